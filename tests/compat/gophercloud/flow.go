// flow is a whole gophercloud (0.12, Debian's golang-github-gophercloud-gophercloud-dev)
// client flow against attachd's Nova API, run by tests/compat/test_compat_gophercloud.py.
//
// attachd has no Keystone: the compute ServiceClient is built by hand with the
// endpoint, and every request carries "Authorization: Basic ..." through the
// ServiceClient's MoreHeaders (docs/clients.md, "gophercloud (Go)").
//
// Every step prints one JSON line on standard output: {"step": NAME, ...what
// gophercloud returned...}. With -pause the program prints the "attached" line
// and then waits for a line on standard input before it lists, gets and
// detaches, so that the caller can check attachd's state in between. Any error
// is printed on standard error and the program exits 1.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/gophercloud/gophercloud"
	"github.com/gophercloud/gophercloud/openstack"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/volumeattach"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/images"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/servers"
)

// newCompute is the whole client set-up: a ProviderClient that locates every
// service at the one endpoint, the compute ServiceClient from it, and Basic
// credentials on every request.
func newCompute(endpoint, user, password, microversion string) (*gophercloud.ServiceClient, error) {
	provider := &gophercloud.ProviderClient{
		EndpointLocator: func(gophercloud.EndpointOpts) (string, error) {
			return gophercloud.NormalizeURL(endpoint), nil
		},
	}
	compute, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{})
	if err != nil {
		return nil, err
	}
	token := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	compute.MoreHeaders = map[string]string{"Authorization": "Basic " + token}
	compute.Microversion = microversion // "" sends no microversion header (2.1)
	return compute, nil
}

func emit(step string, fields map[string]interface{}) {
	out := map[string]interface{}{"step": step}
	for k, v := range fields {
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		fail(step, err)
	}
	fmt.Println(string(b))
}

func fail(step string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
	os.Exit(1)
}

func main() {
	endpoint := flag.String("endpoint", "", "the compute endpoint, http://HOST:PORT/v2.1")
	user := flag.String("user", "", "HTTP Basic user name")
	password := flag.String("password", "", "HTTP Basic password")
	volumeID := flag.String("volume", "", "the volume to attach")
	device := flag.String("device", "/dev/vdb", "the device to ask for")
	microversion := flag.String("microversion", "", "the compute microversion (default: none, i.e. 2.1)")
	networks := flag.String("networks", "", `"none" or "auto" for servers.Create (needed from 2.37)`)
	image := flag.String("image", "", "the image for servers.Create when the image proxy is gone (2.36+)")
	pause := flag.Bool("pause", false, "wait for a line on stdin after the attach")
	flag.Parse()
	if *endpoint == "" || *user == "" || *volumeID == "" {
		fmt.Fprintln(os.Stderr, "usage: flow -endpoint URL -user U -password P -volume ID [-microversion V] [-pause]")
		os.Exit(2)
	}

	compute, err := newCompute(*endpoint, *user, *password, *microversion)
	if err != nil {
		fail("client", err)
	}

	// flavors: list (public, then all: is_public=None), get one
	pages, err := flavors.ListDetail(compute, flavors.ListOpts{}).AllPages()
	if err != nil {
		fail("flavors.ListDetail", err)
	}
	flavorList, err := flavors.ExtractFlavors(pages)
	if err != nil {
		fail("flavors.ExtractFlavors", err)
	}
	pages, err = flavors.ListDetail(compute, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages()
	if err != nil {
		fail("flavors.ListDetail(AllAccess)", err)
	}
	allFlavors, err := flavors.ExtractFlavors(pages)
	if err != nil {
		fail("flavors.ExtractFlavors(AllAccess)", err)
	}
	ids, allIDs := []string{}, []string{}
	for _, f := range flavorList {
		ids = append(ids, f.ID)
	}
	for _, f := range allFlavors {
		allIDs = append(allIDs, f.ID)
	}
	emit("flavors", map[string]interface{}{"ids": ids, "all_ids": allIDs})
	if len(flavorList) == 0 {
		fail("flavors", fmt.Errorf("no flavors"))
	}
	flavor, err := flavors.Get(compute, flavorList[0].ID).Extract()
	if err != nil {
		fail("flavors.Get", err)
	}
	emit("flavor", map[string]interface{}{"id": flavor.ID, "name": flavor.Name, "ram": flavor.RAM,
		"vcpus": flavor.VCPUs, "disk": flavor.Disk})

	// images, through the compute API's image proxy (/images/detail). Nova
	// removed the proxy at 2.36: from then on it answers 404, and the image
	// named by -image is used instead.
	imageRef := *image
	pages, err = images.ListDetail(compute, images.ListOpts{}).AllPages()
	if _, gone := err.(gophercloud.ErrDefault404); gone && imageRef != "" {
		emit("images", map[string]interface{}{"status": 404})
	} else if err != nil {
		fail("images.ListDetail", err)
	} else {
		imageList, err := images.ExtractImages(pages)
		if err != nil {
			fail("images.ExtractImages", err)
		}
		imageIDs := []string{}
		for _, i := range imageList {
			imageIDs = append(imageIDs, i.ID)
		}
		emit("images", map[string]interface{}{"ids": imageIDs})
		if len(imageList) == 0 {
			fail("images", fmt.Errorf("no images"))
		}
		imageRef = imageList[0].ID
	}

	// a server
	opts := servers.CreateOpts{Name: "gophercloud-flow", ImageRef: imageRef, FlavorRef: flavor.ID}
	if *networks != "" {
		opts.Networks = *networks
	}
	created, err := servers.Create(compute, opts).Extract()
	if err != nil {
		fail("servers.Create", err)
	}
	emit("created", map[string]interface{}{"id": created.ID})
	server, err := servers.Get(compute, created.ID).Extract()
	if err != nil {
		fail("servers.Get", err)
	}
	emit("server", map[string]interface{}{"id": server.ID, "name": server.Name, "status": server.Status,
		"tenant_id": server.TenantID, "flavor": server.Flavor, "image": server.Image})

	// attach, list, get, detach
	att, err := volumeattach.Create(compute, server.ID,
		volumeattach.CreateOpts{VolumeID: *volumeID, Device: *device}).Extract()
	if err != nil {
		fail("volumeattach.Create", err)
	}
	emit("attached", map[string]interface{}{"id": att.ID, "device": att.Device, "volume_id": att.VolumeID,
		"server_id": att.ServerID})
	if *pause {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fail("pause", err)
		}
	}
	pages, err = volumeattach.List(compute, server.ID).AllPages()
	if err != nil {
		fail("volumeattach.List", err)
	}
	atts, err := volumeattach.ExtractVolumeAttachments(pages)
	if err != nil {
		fail("volumeattach.ExtractVolumeAttachments", err)
	}
	listed := []map[string]string{}
	for _, a := range atts {
		listed = append(listed, map[string]string{"id": a.ID, "device": a.Device, "volume_id": a.VolumeID,
			"server_id": a.ServerID})
	}
	emit("listed", map[string]interface{}{"attachments": listed})
	got, err := volumeattach.Get(compute, server.ID, att.ID).Extract()
	if err != nil {
		fail("volumeattach.Get", err)
	}
	emit("got", map[string]interface{}{"id": got.ID, "device": got.Device, "volume_id": got.VolumeID,
		"server_id": got.ServerID})
	if err := volumeattach.Delete(compute, server.ID, att.ID).ExtractErr(); err != nil {
		fail("volumeattach.Delete", err)
	}
	emit("detached", nil)

	if err := servers.Delete(compute, server.ID).ExtractErr(); err != nil {
		fail("servers.Delete", err)
	}
	emit("deleted", map[string]interface{}{"id": server.ID})
}
