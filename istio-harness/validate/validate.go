// Package validate runs Istio's own validation on manifest files: the
// structural schema, unknown-field and CEL checks of Istio's CRDs (as the
// Kubernetes API server applies them, via istio.io/istio pkg/config/crd) and
// the semantic checks of istiod's validating webhook (pkg/config/validation,
// through each kind's schema).
package validate

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	istiocrd "istio.io/istio/pkg/config/crd"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/resource"
	yml "istio.io/istio/pkg/test/util/yml"
	"istio.io/istio/pkg/util/sets"
)

// Result is the verdict on one YAML document.
type Result struct {
	// Doc is the document's index in its file, from 0.
	Doc int
	// Kind, Namespace and Name identify the object.
	Kind, Namespace, Name string
	// Istio is false for a kind Istio does not own (not checked here).
	Istio bool
	// Err is Istio's refusal, nil when valid.
	Err error
	// Warnings are Istio's warnings (the object is still accepted).
	Warnings []string
}

// Validator checks documents against a set of Istio CRDs.
type Validator struct {
	schemas *istiocrd.Validator
}

// New loads the CRDs (customresourcedefinitions.gen.yaml of istio.io/api).
func New(crdFile string) (*Validator, error) {
	v, err := istiocrd.NewValidatorFromFiles(crdFile)
	if err != nil {
		return nil, fmt.Errorf("istio CRDs %s: %w", crdFile, err)
	}
	return &Validator{schemas: v}, nil
}

// File validates every document of a YAML file.
func (v *Validator) File(path string) ([]Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return v.Stream(string(data))
}

// Stream validates every document of a YAML stream.
func (v *Validator) Stream(data string) ([]Result, error) {
	var out []Result
	for i, doc := range yml.SplitString(data) {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		r := Result{Doc: i, Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
		gvk := obj.GroupVersionKind()
		r.Istio = strings.HasSuffix(gvk.Group, ".istio.io")
		if r.Istio {
			r.Warnings, r.Err = v.one(doc, obj)
		}
		out = append(out, r)
	}
	return out, nil
}

// one applies the CRD schema, then istiod's validation.
func (v *Validator) one(doc string, obj *unstructured.Unstructured) ([]string, error) {
	if err := v.schemas.ValidateCustomResource(obj); err != nil {
		return nil, err
	}
	gvk := obj.GroupVersionKind()
	s, ok := collections.All.FindByGroupVersionAliasesKind(resource.FromKubernetesGVK(&gvk))
	if !ok {
		return nil, fmt.Errorf("%s: not a kind Istio knows", gvk)
	}
	var ik crd.IstioKind
	if err := yaml.Unmarshal([]byte(doc), &ik); err != nil {
		return nil, err
	}
	cfg, err := crd.ConvertObject(s, &ik, "cluster.local")
	if err != nil {
		return nil, err
	}
	warn, err := s.ValidateConfig(*cfg)
	var warnings []string
	if warn != nil {
		for _, w := range sets.SortedList(sets.New(strings.Split(warn.Error(), "\n")...)) {
			if w = strings.TrimSpace(w); w != "" {
				warnings = append(warnings, w)
			}
		}
	}
	if err != nil {
		return warnings, errors.Join(err)
	}
	return warnings, nil
}
