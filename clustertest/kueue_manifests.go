package clustertest

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Kueue's CRDs come from its manifests (config/components/crd of its
// module, copied at build time): the bases its kustomization lists, and,
// for the CRDs its kustomization patches with a conversion webhook
// (crd/patches/webhook_in_*.yaml), that webhook called by URL.

// kueueCRDs reads Kueue's CRDs from its manifests directory and sets the
// conversion webhook of those its kustomization patches (crd/patches).
func kueueCRDs(dir string, cfg kueueConfig, caPEM []byte) ([]*unstructured.Unstructured, error) {
	var kust struct {
		Resources []string `json:"resources"`
		Patches   []struct {
			Path string `json:"path"`
		} `json:"patches"`
	}
	if err := readYAML(filepath.Join(dir, "crd", "kustomization.yaml"), &kust); err != nil {
		return nil, err
	}
	patches := map[string]kueueConversion{}
	for _, p := range kust.Patches {
		var conv kueueConversion
		if err := readYAML(filepath.Join(dir, "crd", p.Path), &conv); err != nil {
			return nil, err
		}
		patches[conv.Metadata.Name] = conv
	}
	var crds []*unstructured.Unstructured
	for _, res := range kust.Resources {
		crd := &unstructured.Unstructured{}
		if err := readYAML(filepath.Join(dir, "crd", res), &crd.Object); err != nil {
			return nil, err
		}
		if patch, ok := patches[crd.GetName()]; ok {
			if err := kueueCRDConversion(crd, patch, cfg, caPEM); err != nil {
				return nil, err
			}
			delete(patches, crd.GetName())
		}
		crds = append(crds, crd)
	}
	if len(crds) == 0 || len(patches) > 0 {
		return nil, fmt.Errorf("kueue's CRD kustomization in %s: %d CRDs, conversion patches for missing CRDs %v", dir, len(crds), patches)
	}
	return crds, nil
}

func readYAML(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// kueueConversion is a conversion patch of Kueue's CRD manifests
// (config/components/crd/patches/webhook_in_*.yaml): the CRD it applies
// to and the conversion it sets, with a service reference.
type kueueConversion struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Conversion struct {
			Strategy string `json:"strategy"`
			Webhook  struct {
				ClientConfig struct {
					Service struct {
						Path string `json:"path"`
					} `json:"service"`
				} `json:"clientConfig"`
				ConversionReviewVersions []string `json:"conversionReviewVersions"`
			} `json:"webhook"`
		} `json:"conversion"`
	} `json:"spec"`
}

// kueueCRDConversion sets on crd the conversion of patch, pointed at the
// local Kueue, as Kueue's manifests (kustomize) set it with a service.
func kueueCRDConversion(crd *unstructured.Unstructured, patch kueueConversion, c kueueConfig, caPEM []byte) error {
	conv := patch.Spec.Conversion
	if conv.Strategy != "Webhook" || conv.Webhook.ClientConfig.Service.Path == "" {
		return fmt.Errorf("conversion patch for %s: want strategy Webhook with a service path", patch.Metadata.Name)
	}
	versions := make([]any, len(conv.Webhook.ConversionReviewVersions))
	for i, v := range conv.Webhook.ConversionReviewVersions {
		versions[i] = v
	}
	return unstructured.SetNestedMap(crd.Object, map[string]any{
		"strategy": "Webhook",
		"webhook": map[string]any{
			"clientConfig": map[string]any{
				"url":      c.url(conv.Webhook.ClientConfig.Service.Path),
				"caBundle": base64.StdEncoding.EncodeToString(caPEM),
			},
			"conversionReviewVersions": versions,
		},
	}, "spec", "conversion")
}
