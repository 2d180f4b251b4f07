// Command minik is a local Kubernetes cluster in one command.
package main

import (
	"os"

	"minik.dev/minik/cli"
)

func main() { os.Exit(cli.Main()) }
