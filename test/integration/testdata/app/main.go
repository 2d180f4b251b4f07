// Command app is the docker integration tests' workload: a tiny static HTTP
// server, built into a FROM scratch image by the test itself.
//
//	app                 serve :8080, logging each request to stdout, and
//	                    app_requests_total on /metrics
//	app get URL         print the body at URL (to test pod-to-pod traffic)
//	app echo WORDS...   print the words
//	app exit CODE       exit with CODE
//	app env NAME        print the variable
//	app cat FILE        print the file
//	app write FILE TEXT write TEXT to FILE
//	app stat PATH       print PATH's mode and group
//	app fstype PATH     print the type of the filesystem mounted at PATH
//	app apiserver       GET /version from the apiserver as an in-cluster client
//	app udpecho         answer each UDP datagram on :9000 with "echo " and it
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		serve()
		return
	}
	switch args[0] {
	case "get":
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(os.Stdout, resp.Body)
	case "echo":
		fmt.Println(strings.Join(args[1:], " "))
	case "exit":
		code, _ := strconv.Atoi(args[1])
		fmt.Println("exiting with", code)
		os.Exit(code)
	case "env":
		fmt.Println(os.Getenv(args[1]))
	case "cat":
		data, err := os.ReadFile(args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(data)
	case "write":
		if err := os.WriteFile(args[1], []byte(args[2]), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "udpecho":
		pc, err := net.ListenPacket("udp", ":9000")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("echoing UDP on :9000")
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				os.Exit(1)
			}
			_, _ = pc.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	case "stat":
		fi, err := os.Stat(args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s gid=%d\n", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid)
	case "fstype":
		data, _ := os.ReadFile("/proc/mounts")
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[1] == args[1] {
				fmt.Println(f[2])
			}
		}
	case "apiserver":
		// An in-cluster client's first call, as client-go makes it: the
		// apiserver from the environment, the service account's token and CA.
		const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
		token, err1 := os.ReadFile(sa + "token")
		ca, err2 := os.ReadFile(sa + "ca.crt")
		pool := x509.NewCertPool()
		if err1 != nil || err2 != nil || !pool.AppendCertsFromPEM(ca) {
			fmt.Fprintln(os.Stderr, "service account files:", err1, err2)
			os.Exit(1)
		}
		url := "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")) + "/version"
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := c.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer resp.Body.Close()
		fmt.Println(url, resp.Status)
		_, _ = io.Copy(os.Stdout, resp.Body)
		if resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown command", args[0])
		os.Exit(2)
	}
}

func serve() {
	host, _ := os.Hostname()
	fmt.Println("serving on :8080 as", host, "greeting", os.Getenv("GREETING"))
	// The app is an exporter too: Prometheus scrapes /metrics of pods
	// annotated for it.
	requests := promauto.NewCounterVec(prometheus.CounterOpts{Name: "app_requests_total", Help: "Requests served, by path."}, []string{"path"})
	http.Handle("/metrics", promhttp.Handler())
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		requests.WithLabelValues(r.URL.Path).Inc()
		fmt.Println("request", r.URL.Path, "from", r.RemoteAddr)
		// Request headers X-Test-NAME come back as X-Echo-NAME, so tests
		// see what a proxy in between sent.
		for name, values := range r.Header {
			if rest, ok := strings.CutPrefix(name, "X-Test-"); ok {
				w.Header()["X-Echo-"+rest] = values
			}
		}
		fmt.Fprintf(w, "%s from %s\n", os.Getenv("GREETING"), host)
	})
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
