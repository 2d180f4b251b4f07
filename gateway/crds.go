package gateway

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// The standard channel's CRDs of sigs.k8s.io/gateway-api v1.6.3, as the
// module ships them in config/crd/standard (the module embeds none; its
// ValidatingAdmissionPolicy against downgrades is left out).
//
//go:embed crds/*.yaml
var crdFiles embed.FS

// BundleVersion is the Gateway API release of the embedded CRDs.
const BundleVersion = "v1.6.3"

// CRDs are the Gateway API standard channel's CustomResourceDefinitions.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	names, err := fs.Glob(crdFiles, "crds/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list the gateway CRDs: %w", err)
	}
	sort.Strings(names)
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, n := range names {
		data, err := crdFiles.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		out = append(out, crd)
	}
	return out, nil
}
