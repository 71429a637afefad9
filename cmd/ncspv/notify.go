package main

import (
	"net"
	"strings"
)

// sdNotify sends a state line (READY=1, STOPPING=1) to systemd when run
// as a Type=notify service; outside systemd it does nothing.
func sdNotify(getenv func(string) string, state string) error {
	sock := getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	if strings.HasPrefix(sock, "@") {
		sock = "\x00" + sock[1:] // abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
