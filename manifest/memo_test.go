package manifest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestMemoKeepsResultsWithinItsBounds(t *testing.T) {
	c := memo[int]{max: 2, maxLen: 4}
	calls := 0
	length := func(s string) (int, error) {
		calls++
		if s == "bad" {
			return 0, errors.New("bad")
		}
		return len(s), nil
	}
	for range 2 {
		if v, err := c.get("ab", length); v != 2 || err != nil {
			t.Fatalf("get(ab) = %d, %v", v, err)
		}
	}
	if calls != 1 {
		t.Errorf("a kept key was computed %d times", calls)
	}
	for _, key := range []string{"bad", "bad", strings.Repeat("x", 5), strings.Repeat("x", 5)} {
		calls = 0
		c.get(key, length)
		if calls != 1 {
			t.Errorf("%q: computed %d times; failures and long keys are never kept", key, calls)
		}
	}
	for i := range 4 {
		c.get(strconv.Itoa(i), length)
	}
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	if n != 2 {
		t.Errorf("the memo holds %d keys, want its max of 2", n)
	}
}
