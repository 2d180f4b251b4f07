// Command etcd is the etcd server of the version Kubernetes requires, for
// the suite's etcd image (the sample-apiserver specs run one beside the
// aggregated apiserver): upstream's etcd main, built here.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
