// Command probe is the one program of the engine tests' FROM scratch
// image. Its arguments are steps run in order, so one binary can play a
// pause container, a web server, a crashing app or a printer:
//
//	echo TEXT | echoerr TEXT | lines N | env | hostname | cat FILE |
//	write FILE TEXT | stdin | ttysize | sleep DURATION | serve | pause |
//	exit CODE
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	// As PID 1 the process gets no default signal handling: make SIGTERM
	// end it like any program, so a stop does not wait for SIGKILL.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-term
		os.Exit(0)
	}()

	args := os.Args[1:]
	next := func() string {
		if len(args) == 0 {
			fail("missing argument")
		}
		a := args[0]
		args = args[1:]
		return a
	}
	for len(args) > 0 {
		switch step := next(); step {
		case "echo":
			fmt.Println(next())
		case "echoerr":
			fmt.Fprintln(os.Stderr, next())
		case "lines":
			n, _ := strconv.Atoi(next())
			for i := 1; i <= n; i++ {
				fmt.Printf("line %d\n", i)
			}
		case "env":
			for _, kv := range os.Environ() {
				fmt.Println(kv)
			}
		case "hostname":
			h, _ := os.Hostname()
			fmt.Println(h)
		case "cat":
			b, err := os.ReadFile(next())
			if err != nil {
				fail(err.Error())
			}
			os.Stdout.Write(b)
		case "write":
			name, text := next(), next()
			if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
				fail(err.Error())
			}
		case "stat":
			name := next()
			fi, err := os.Lstat(name)
			if err != nil {
				fail(err.Error())
			}
			st := fi.Sys().(*syscall.Stat_t)
			fmt.Printf("%s %s gid=%d\n", name, fi.Mode(), st.Gid)
		case "uid":
			fmt.Println("uid", os.Geteuid())
		case "groups":
			gs, _ := os.Getgroups()
			fmt.Println("groups", gs)
		case "fstype":
			at := next()
			b, _ := os.ReadFile("/proc/mounts")
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) > 2 && f[1] == at {
					fmt.Println(at, f[2])
				}
			}
		case "stdin":
			io.Copy(os.Stdout, os.Stdin)
		case "ttysize":
			var ws struct{ Row, Col, X, Y uint16 }
			syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws)))
			fmt.Printf("%dx%d\n", ws.Col, ws.Row)
		case "sleep":
			d, _ := time.ParseDuration(next())
			time.Sleep(d)
		case "serve":
			fmt.Println("serving on :8080")
			http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				fmt.Println("request", r.URL.Path)
				fmt.Fprintf(w, "hello from %s\n", r.URL.Path)
			})
			fail(http.ListenAndServe(":8080", nil).Error())
		case "pause":
			select {}
		case "exit":
			code, _ := strconv.Atoi(next())
			os.Exit(code)
		default:
			fail("unknown step " + step)
		}
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "probe:", msg)
	os.Exit(2)
}
