package clusterid_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kubeworker/kubeworker/clusterid"
)

const testUID = "6b1b7a4e-6c43-4c8e-9a8e-0e5f3b9f2a11"

func TestParsePID(t *testing.T) {
	long := strings.Repeat("a", 254)
	tests := []struct {
		name string
		in   string
		want clusterid.PID
		part string // the part at fault; "" when valid
	}{
		{name: "parses uid, namespace and name", in: testUID + ":default:etl-x7k2p", want: clusterid.PID{ClusterUID: testUID, Namespace: "default", Name: "etl-x7k2p"}},
		{name: "accepts a dotted job name", in: "u:team-a:nightly.etl", want: clusterid.PID{ClusterUID: "u", Namespace: "team-a", Name: "nightly.etl"}},
		{name: "accepts a configured uid of printable ASCII", in: "prod/eu-1_A!:ns:n", want: clusterid.PID{ClusterUID: "prod/eu-1_A!", Namespace: "ns", Name: "n"}},
		{name: "rejects the empty string", in: "", part: clusterid.PartWhole},
		{name: "rejects text with no colon", in: "just-a-job", part: clusterid.PartWhole},
		{name: "rejects text with one colon", in: "ns:job", part: clusterid.PartWhole},
		{name: "rejects an empty cluster uid", in: ":ns:job", part: clusterid.PartClusterUID},
		{name: "rejects a cluster uid with a space", in: "a b:ns:job", part: clusterid.PartClusterUID},
		{name: "rejects a cluster uid with a control character", in: "a\x00:ns:job", part: clusterid.PartClusterUID},
		{name: "rejects a cluster uid with non-ASCII", in: "é:ns:job", part: clusterid.PartClusterUID},
		{name: "rejects a cluster uid longer than 253", in: long + ":ns:job", part: clusterid.PartClusterUID},
		{name: "rejects an empty namespace", in: "u::job", part: clusterid.PartNamespace},
		{name: "rejects an upper-case namespace", in: "u:Default:job", part: clusterid.PartNamespace},
		{name: "rejects a dotted namespace", in: "u:a.b:job", part: clusterid.PartNamespace},
		{name: "rejects an empty job name", in: "u:ns:", part: clusterid.PartName},
		{name: "rejects a colon in the job name", in: "u:ns:job:extra", part: clusterid.PartName},
		{name: "rejects an upper-case job name", in: "u:ns:Job", part: clusterid.PartName},
		{name: "rejects a job name longer than 253", in: "u:ns:" + long, part: clusterid.PartName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clusterid.ParsePID(tt.in)
			if tt.part == "" {
				if err != nil {
					t.Fatalf("ParsePID(%q): %v", tt.in, err)
				}
				if got != tt.want {
					t.Fatalf("ParsePID(%q) = %#v, want %#v", tt.in, got, tt.want)
				}
				if got.String() != tt.in {
					t.Fatalf("String() = %q, want %q", got.String(), tt.in)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParsePID(%q) = %#v, want an error about the %s", tt.in, got, tt.part)
			}
			if got != (clusterid.PID{}) {
				t.Errorf("ParsePID(%q) returned %#v with its error, want the zero PID", tt.in, got)
			}
			if !errors.Is(err, clusterid.ErrInvalidPID) {
				t.Errorf("error %v does not match ErrInvalidPID", err)
			}
			var pe *clusterid.PIDError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *PIDError", err)
			}
			if pe.Part != tt.part || pe.Input != tt.in || pe.Reason == "" {
				t.Errorf("PIDError = %+v, want Part %q and Input %q", pe, tt.part, tt.in)
			}
			if !strings.Contains(err.Error(), tt.part) {
				t.Errorf("message %q does not name the %s", err, tt.part)
			}
		})
	}
}

func TestPIDValidate(t *testing.T) {
	tests := []struct {
		name string
		pid  clusterid.PID
		part string
	}{
		{name: "accepts a valid PID", pid: clusterid.PID{ClusterUID: testUID, Namespace: "ns", Name: "job"}},
		{name: "rejects the zero PID by its cluster uid", pid: clusterid.PID{}, part: clusterid.PartClusterUID},
		{name: "rejects a colon in the cluster uid, which would not round-trip", pid: clusterid.PID{ClusterUID: "a:b", Namespace: "ns", Name: "job"}, part: clusterid.PartClusterUID},
		{name: "rejects a colon in the namespace", pid: clusterid.PID{ClusterUID: "u", Namespace: "a:b", Name: "job"}, part: clusterid.PartNamespace},
		{name: "rejects a colon in the name", pid: clusterid.PID{ClusterUID: "u", Namespace: "ns", Name: "a:b"}, part: clusterid.PartName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.pid.Validate()
			var pe *clusterid.PIDError
			switch {
			case tt.part == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.part == "":
			case !errors.As(err, &pe):
				t.Fatalf("Validate = %v, want a *PIDError about the %s", err, tt.part)
			case pe.Part != tt.part:
				t.Fatalf("Validate blames the %s, want the %s: %v", pe.Part, tt.part, err)
			}
		})
	}
}

func TestPIDStoresAsTextInJSON(t *testing.T) {
	type record struct {
		PID clusterid.PID `json:"pid"`
	}
	in := record{PID: clusterid.PID{ClusterUID: testUID, Namespace: "ns", Name: "job-1"}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pid":"` + testUID + `:ns:job-1"}`; string(data) != want {
		t.Fatalf("JSON = %s, want %s", data, want)
	}
	var out record
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("decoded %#v, want %#v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"pid":"u:ns:Bad"}`), &out); !errors.Is(err, clusterid.ErrInvalidPID) {
		t.Fatalf("decoding a bad PID: %v, want ErrInvalidPID", err)
	}
	if _, err := json.Marshal(record{}); !errors.Is(err, clusterid.ErrInvalidPID) {
		t.Fatalf("encoding the zero PID: %v, want ErrInvalidPID", err)
	}
}
