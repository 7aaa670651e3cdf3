package clustertest

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
)

// stageFiles are kwok's stages: how fake nodes and pods change state. The
// pod stages implement the annotations of annotations.go; their selectors
// are mutually exclusive, so kwok never picks between two at random.
//
//go:embed stages/*.yaml
var stageFiles embed.FS

// stagesConfig returns every stage as one multi-document YAML file for
// kwok's --config.
func stagesConfig() ([]byte, error) {
	names, err := fs.Glob(stageFiles, "stages/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list stages: %w", err)
	}
	var b bytes.Buffer
	for _, name := range names {
		data, err := stageFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read stage %s: %w", name, err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.Bytes(), nil
}
