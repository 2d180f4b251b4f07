// Package manifests applies a folder of YAML, JSON and jsonnet files to the
// cluster, again within moments of any change, with server-side apply under
// its own field manager, and prunes what a removed file (or a removed
// object of a file) had made: an inventory in the cluster records what the
// folder made, so nothing else is ever deleted.
package manifests

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-jsonnet"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"minik.dev/minik/nodeconfig"
)

// document is one object of one file.
type document struct {
	file  string // relative to the folder
	index int    // from 1, in the file
	obj   *unstructured.Unstructured
}

// folder is what the folder holds now.
type folder struct {
	docs []document
	// files are every file read, with what went wrong reading it.
	files map[string][]string
	// fingerprint changes whenever any file does.
	fingerprint string
}

// load reads every manifest under dir: sub-folders in name order (the
// walk's lexical order), and in each folder CustomResourceDefinitions and
// Namespaces first. A file that does not parse is recorded with its reason;
// the others are still read.
func load(dir string, extVars map[string]string) (folder, error) {
	f := folder{files: map[string][]string{}}
	h := sha256.New()
	names := make([]string, 0, len(extVars))
	for k := range extVars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(h, "%s=%s\x00", k, extVars[k])
	}
	var byFolder [][]document
	current := ""
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		ext := filepath.Ext(name)
		if ext != ".yaml" && ext != ".yml" && ext != ".json" && ext != ".jsonnet" && ext != ".libsonnet" {
			return nil
		}
		// NAME.rules.yaml holds Prometheus rules: the Prometheus server
		// loads those (controlplane/promserver).
		if nodeconfig.IsPrometheusRuleFile(name) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
		h.Write(data)
		if ext == ".libsonnet" {
			return nil // only imported
		}
		if folderOf := filepath.Dir(rel); folderOf != current || byFolder == nil {
			current = folderOf
			byFolder = append(byFolder, nil)
		}
		docs, problems := parse(dir, rel, data, extVars)
		f.files[rel] = problems
		byFolder[len(byFolder)-1] = append(byFolder[len(byFolder)-1], docs...)
		return nil
	})
	if err != nil {
		return folder{}, fmt.Errorf("read manifests folder %s: %w", dir, err)
	}
	for _, docs := range byFolder {
		sort.SliceStable(docs, func(i, j int) bool { return rank(docs[i].obj) < rank(docs[j].obj) })
		f.docs = append(f.docs, docs...)
	}
	f.fingerprint = fmt.Sprintf("%x", h.Sum(nil))
	return f, nil
}

// rank puts the kinds others depend on first.
func rank(o *unstructured.Unstructured) int {
	switch o.GetKind() {
	case "CustomResourceDefinition":
		return 0
	case "Namespace":
		return 1
	}
	return 2
}

// parse reads one file's objects; problems say what did not parse.
func parse(dir, rel string, data []byte, extVars map[string]string) ([]document, []string) {
	var raws []json.RawMessage
	switch filepath.Ext(rel) {
	case ".jsonnet":
		vm := jsonnet.MakeVM()
		vm.Importer(&jsonnet.FileImporter{JPaths: []string{dir, filepath.Join(dir, filepath.Dir(rel))}})
		for k, v := range extVars {
			vm.ExtVar(k, v)
		}
		out, err := vm.EvaluateAnonymousSnippet(rel, string(data))
		if err != nil {
			return nil, []string{"jsonnet: " + firstLine(err.Error())}
		}
		var problems []string
		raws, problems = jsonnetObjects([]byte(out))
		if problems != nil {
			return nil, problems
		}
	default:
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for i := 1; ; i++ {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, []string{fmt.Sprintf("document %d: %s", i, firstLine(err.Error()))}
			}
			raws = append(raws, raw)
		}
	}
	var docs []document
	var problems []string
	for i, raw := range raws {
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			continue // an empty document between ---
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			problems = append(problems, fmt.Sprintf("document %d: %s", i+1, firstLine(err.Error())))
			continue
		}
		if obj.IsList() {
			list, _ := obj.ToList()
			for _, item := range list.Items {
				docs = append(docs, document{file: rel, index: i + 1, obj: item.DeepCopy()})
			}
			continue
		}
		if obj.GetName() == "" {
			problems = append(problems, fmt.Sprintf("document %d: %s has no metadata.name", i+1, obj.GetKind()))
			continue
		}
		docs = append(docs, document{file: rel, index: i + 1, obj: obj})
	}
	return docs, problems
}

// jsonnetObjects accepts what a jsonnet file may yield: one object, a list
// of objects, or a {name: object} map of them.
func jsonnetObjects(out []byte) ([]json.RawMessage, []string) {
	var list []json.RawMessage
	if json.Unmarshal(out, &list) == nil {
		return list, nil
	}
	var probe struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		return nil, []string{"jsonnet: the result is neither an object nor a list"}
	}
	if probe.Kind != "" {
		return []json.RawMessage{out}, nil
	}
	var byName map[string]json.RawMessage
	if err := json.Unmarshal(out, &byName); err != nil {
		return nil, []string{"jsonnet: " + err.Error()}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		list = append(list, byName[n])
	}
	return list, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
