//go:build !linux

package services

import "errors"

var errNotLinux = errors.New("service IPs need Linux: nodes of the docker driver run it")

func addAddress(int, string) error    { return errNotLinux }
func deleteAddress(int, string) error { return errNotLinux }
