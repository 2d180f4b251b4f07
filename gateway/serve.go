package gateway

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Endpoints picks a ready endpoint ("ip:port") of a Service port, by the
// Service's port number.
type Endpoints func(namespace, service string, port int32) (string, error)

// Port is what one port of one Gateway serves: its listeners, most
// specific hostname first.
type Port struct {
	Number    int32
	HTTPS     bool
	Listeners []*ListenerModel
	entries   map[*ListenerModel][]entry
}

// entry is one match of one rule of one route on one hostname, the unit
// of Gateway API's precedence.
type entry struct {
	host    string // "" any, "*.x" wildcard
	match   gwv1.HTTPRouteMatch
	rule    int
	route   *AttachedRoute
	headers []*regexp.Regexp // RegularExpression header matches, by index
}

// Ports is the serving table of a Gateway: one Port per listener port.
func (g *GatewayModel) Ports() []*Port {
	byPort := map[int32]*Port{}
	for _, l := range g.Listeners {
		if !l.Serve {
			continue
		}
		p := byPort[int32(l.Listener.Port)]
		if p == nil {
			p = &Port{Number: int32(l.Listener.Port), HTTPS: l.Listener.Protocol == gwv1.HTTPSProtocolType, entries: map[*ListenerModel][]entry{}}
			byPort[p.Number] = p
		}
		p.Listeners = append(p.Listeners, l)
		p.entries[l] = entries(l)
	}
	var out []*Port
	for _, p := range byPort {
		sort.SliceStable(p.Listeners, func(i, j int) bool {
			return hostRank(hostOf(p.Listeners[i].Listener.Hostname)) > hostRank(hostOf(p.Listeners[j].Listener.Hostname))
		})
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}

// hostRank orders hostnames: exact before wildcard before any, longer
// before shorter.
func hostRank(h string) int {
	switch {
	case h == "":
		return 0
	case strings.HasPrefix(h, "*."):
		return 1000 + len(h)
	}
	return 100000 + len(h)
}

func entries(l *ListenerModel) []entry {
	var out []entry
	for _, ar := range l.Routes {
		hosts := ar.Hostnames
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		for ri, rule := range ar.Route.Spec.Rules {
			matches := rule.Matches
			if len(matches) == 0 {
				matches = []gwv1.HTTPRouteMatch{{}}
			}
			for _, h := range hosts {
				for _, m := range matches {
					e := entry{host: h, match: m, rule: ri, route: ar}
					for _, hm := range m.Headers {
						var re *regexp.Regexp
						if hm.Type != nil && *hm.Type == gwv1.HeaderMatchRegularExpression {
							re, _ = regexp.Compile(hm.Value)
						}
						e.headers = append(e.headers, re)
					}
					out = append(out, e)
				}
			}
		}
	}
	// Gateway API precedence; routes are already oldest first, and the
	// sort is stable, so ties keep age, then name, then rule order.
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ha, hb := hostRank(a.host), hostRank(b.host); ha != hb {
			return ha > hb
		}
		pa, pb := pathRank(a.match.Path), pathRank(b.match.Path)
		if pa != pb {
			return pa > pb
		}
		if ma, mb := a.match.Method != nil, b.match.Method != nil; ma != mb {
			return ma
		}
		if len(a.match.Headers) != len(b.match.Headers) {
			return len(a.match.Headers) > len(b.match.Headers)
		}
		return len(a.match.QueryParams) > len(b.match.QueryParams)
	})
	return out
}

// pathRank: Exact before prefix, longer before shorter.
func pathRank(p *gwv1.HTTPPathMatch) int {
	t, v := pathOf(p)
	if t == gwv1.PathMatchExact {
		return 100000 + len(v)
	}
	return len(v)
}

func pathOf(p *gwv1.HTTPPathMatch) (gwv1.PathMatchType, string) {
	t, v := gwv1.PathMatchPathPrefix, "/"
	if p != nil {
		if p.Type != nil {
			t = *p.Type
		}
		if p.Value != nil {
			v = *p.Value
		}
	}
	return t, v
}

// listenerFor picks the listener of the port for a request's host.
func (p *Port) listenerFor(host string) *ListenerModel {
	for _, l := range p.Listeners {
		if hostMatchesListener(hostOf(l.Listener.Hostname), host) {
			return l
		}
	}
	return nil
}

func hostMatchesListener(pattern, host string) bool {
	switch {
	case pattern == "":
		return true
	case strings.HasPrefix(pattern, "*."):
		return wildcardMatches(pattern, host)
	}
	return pattern == host
}

// Certificate picks the certificate of the listener for a client's SNI.
func (p *Port) Certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	host := strings.ToLower(hello.ServerName)
	if l := p.listenerFor(host); l != nil && l.Cert != nil {
		return l.Cert, nil
	}
	for _, l := range p.Listeners {
		if l.Cert != nil && hello.ServerName == "" {
			return l.Cert, nil
		}
	}
	return nil, fmt.Errorf("no certificate for host %q", hello.ServerName)
}

// Handler serves the port's routes, proxying to endpoints.
func (p *Port) Handler(eps Endpoints) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.ToLower(r.Host)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		l := p.listenerFor(host)
		if l == nil {
			http.Error(w, "404 page not found: no listener for host "+host, http.StatusNotFound)
			return
		}
		e, ok := match(p.entries[l], host, r)
		if !ok {
			http.Error(w, "404 page not found: no route matches "+host+r.URL.Path, http.StatusNotFound)
			return
		}
		rule := e.route.Route.Spec.Rules[e.rule]
		p.serve(w, r, e, rule.Filters, e.route.Backends[e.rule], eps)
	})
}

func match(es []entry, host string, r *http.Request) (entry, bool) {
	for _, e := range es {
		if e.host != "" && !(e.host == host || (strings.HasPrefix(e.host, "*.") && wildcardMatches(e.host, host))) {
			continue
		}
		if matches(e, r) {
			return e, true
		}
	}
	return entry{}, false
}

func matches(e entry, r *http.Request) bool {
	m := e.match
	t, v := pathOf(m.Path)
	switch t {
	case gwv1.PathMatchExact:
		if r.URL.Path != v {
			return false
		}
	case gwv1.PathMatchPathPrefix:
		if !prefixMatches(v, r.URL.Path) {
			return false
		}
	case gwv1.PathMatchRegularExpression:
		re, err := regexp.Compile("^(?:" + v + ")$")
		if err != nil || !re.MatchString(r.URL.Path) {
			return false
		}
	}
	if m.Method != nil && string(*m.Method) != r.Method {
		return false
	}
	for i, h := range m.Headers {
		values := r.Header.Values(string(h.Name))
		if strings.EqualFold(string(h.Name), "host") {
			values = []string{r.Host}
		}
		if len(values) == 0 {
			return false
		}
		got := strings.Join(values, ",")
		if re := e.headers[i]; re != nil {
			if !re.MatchString(got) {
				return false
			}
		} else if h.Type != nil && *h.Type == gwv1.HeaderMatchRegularExpression {
			return false // not a valid expression
		} else if got != h.Value {
			return false
		}
	}
	q := r.URL.Query()
	for _, qm := range m.QueryParams {
		vals, ok := q[string(qm.Name)]
		if !ok || len(vals) == 0 {
			return false
		}
		if qm.Type != nil && *qm.Type == gwv1.QueryParamMatchRegularExpression {
			re, err := regexp.Compile(qm.Value)
			if err != nil || !re.MatchString(vals[0]) {
				return false
			}
		} else if vals[0] != qm.Value {
			return false
		}
	}
	return true
}

// prefixMatches is Gateway API's PathPrefix: by whole path elements.
func prefixMatches(prefix, path string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// serve applies a rule's filters and proxies to one of its backends.
func (p *Port) serve(w http.ResponseWriter, r *http.Request, e entry, filters []gwv1.HTTPRouteFilter, backends []Backend, eps Endpoints) {
	var respMods []*gwv1.HTTPHeaderFilter
	var rewrite *gwv1.HTTPURLRewriteFilter
	for _, f := range filters {
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestRedirect:
			if f.RequestRedirect != nil {
				p.redirect(w, r, e, f.RequestRedirect)
				return
			}
		case gwv1.HTTPRouteFilterRequestHeaderModifier:
			modifyHeaders(r.Header, f.RequestHeaderModifier)
		case gwv1.HTTPRouteFilterResponseHeaderModifier:
			respMods = append(respMods, f.ResponseHeaderModifier)
		case gwv1.HTTPRouteFilterURLRewrite:
			rewrite = f.URLRewrite
		}
	}
	if len(backends) == 0 {
		http.Error(w, "500 internal server error: the rule has no backends", http.StatusInternalServerError)
		return
	}
	b := pick(backends)
	if b == nil {
		http.Error(w, "500 internal server error: no backend has weight", http.StatusInternalServerError)
		return
	}
	if b.Invalid {
		http.Error(w, "500 internal server error: the backend is not valid", http.StatusInternalServerError)
		return
	}
	for _, f := range b.Filters {
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier:
			modifyHeaders(r.Header, f.RequestHeaderModifier)
		case gwv1.HTTPRouteFilterResponseHeaderModifier:
			respMods = append(respMods, f.ResponseHeaderModifier)
		}
	}
	upstream, err := eps(b.Namespace, b.Name, b.Port)
	if err != nil {
		http.Error(w, "503 service unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	scheme := "http"
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: upstream})
			pr.Out.Host = pr.In.Host
			if rewrite != nil {
				if rewrite.Hostname != nil {
					pr.Out.Host = string(*rewrite.Hostname)
				}
				if rewrite.Path != nil {
					pr.Out.URL.Path = modifyPath(r.URL.Path, e.match.Path, rewrite.Path)
					pr.Out.URL.RawPath = ""
				}
			}
			pr.SetXForwarded()
			if r.TLS != nil {
				scheme = "https"
			}
			pr.Out.Header.Set("X-Forwarded-Proto", scheme)
		},
		ModifyResponse: func(resp *http.Response) error {
			for _, m := range respMods {
				modifyHeaders(resp.Header, m)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "502 bad gateway: "+err.Error(), http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(w, r)
}

// pick chooses a backend by weight; nil when every weight is 0.
func pick(bs []Backend) *Backend {
	var total int64
	for _, b := range bs {
		total += int64(b.Weight)
	}
	if total <= 0 {
		return nil
	}
	n := rand.Int64N(total)
	for i := range bs {
		n -= int64(bs[i].Weight)
		if n < 0 {
			return &bs[i]
		}
	}
	return &bs[len(bs)-1]
}

func modifyHeaders(h http.Header, f *gwv1.HTTPHeaderFilter) {
	if f == nil {
		return
	}
	for _, s := range f.Set {
		h.Set(string(s.Name), s.Value)
	}
	for _, a := range f.Add {
		h.Add(string(a.Name), a.Value)
	}
	for _, name := range f.Remove {
		h.Del(name)
	}
}

// modifyPath applies a ReplaceFullPath or ReplacePrefixMatch.
func modifyPath(path string, m *gwv1.HTTPPathMatch, mod *gwv1.HTTPPathModifier) string {
	switch mod.Type {
	case gwv1.FullPathHTTPPathModifier:
		if mod.ReplaceFullPath != nil {
			return *mod.ReplaceFullPath
		}
	case gwv1.PrefixMatchHTTPPathModifier:
		if mod.ReplacePrefixMatch == nil {
			return path
		}
		_, prefix := pathOf(m)
		prefix = strings.TrimSuffix(prefix, "/")
		rest := strings.TrimPrefix(path, prefix)
		repl := strings.TrimSuffix(*mod.ReplacePrefixMatch, "/")
		out := repl + rest
		if out == "" {
			out = "/"
		} else if !strings.HasPrefix(out, "/") {
			out = "/" + out
		}
		return out
	}
	return path
}

// redirect answers a RequestRedirect.
func (p *Port) redirect(w http.ResponseWriter, r *http.Request, e entry, f *gwv1.HTTPRequestRedirectFilter) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	origScheme := scheme
	if f.Scheme != nil {
		scheme = *f.Scheme
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if f.Hostname != nil {
		host = string(*f.Hostname)
	}
	port := int(p.Number)
	switch {
	case f.Port != nil:
		port = int(*f.Port)
	case scheme != origScheme:
		port = 0 // the new scheme's well-known port
	}
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		port = 0
	}
	if port != 0 {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	path := r.URL.Path
	if f.Path != nil {
		path = modifyPath(path, e.match.Path, f.Path)
	}
	u := url.URL{Scheme: scheme, Host: host, Path: path, RawQuery: r.URL.RawQuery}
	code := http.StatusFound
	if f.StatusCode != nil {
		code = *f.StatusCode
	}
	w.Header().Set("Location", u.String())
	w.WriteHeader(code)
}
