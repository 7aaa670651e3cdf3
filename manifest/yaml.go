package manifest

import (
	"encoding/json"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

// JobYAML writes a prepared Job as YAML without its empty status and
// server-set fields, in a stable order: the form to keep in golden files.
func JobYAML(job *batchv1.Job) ([]byte, error) {
	data, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if s, ok := m["status"].(map[string]any); ok && len(s) == 0 {
		delete(m, "status")
	}
	if meta, ok := m["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	return yaml.Marshal(m)
}
