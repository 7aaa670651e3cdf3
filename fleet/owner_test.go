package fleet_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/kubeworker/kubeworker/fleet"
)

// runIDs returns n run IDs shaped like the worker's (UUIDs, here made up).
func runIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-7c1e-4f0a-9b3d-%012x", i*2654435761, i)
	}
	return ids
}

func TestOwnerIsDeterministicAndIgnoresTheMembersOrder(t *testing.T) {
	members := []string{"worker-7d9f-abcde/k2x9q", "worker-7d9f-fghij/p4m8z", "worker-7d9f-klmno/b6n3w"}
	reversed := slices.Clone(members)
	slices.Reverse(reversed)
	for _, id := range runIDs(1000) {
		got := fleet.Owner(members, id)
		if !slices.Contains(members, got) {
			t.Fatalf("Owner(%q) = %q, not a member", id, got)
		}
		if again := fleet.Owner(reversed, id); again != got {
			t.Fatalf("Owner(%q) = %q, but %q with the members reversed", id, got, again)
		}
	}
	// Pinned: the hash is part of the fleet's protocol between versions.
	var got []string
	for i := range len(pinnedOwners) {
		got = append(got, fleet.Owner(members, fmt.Sprintf("run-%d", i))[18:])
	}
	if !slices.Equal(got, pinnedOwners) {
		t.Errorf("owners of run-0...: %q, were %q: the hash changed", got, pinnedOwners)
	}
}

func TestOwnerOfNoMembersIsNobody(t *testing.T) {
	if got := fleet.Owner(nil, "run"); got != "" {
		t.Errorf("Owner(nil) = %q, want empty", got)
	}
}

func TestOwnerSpreadsRunsEvenlyOverMembers(t *testing.T) {
	ids := runIDs(10000)
	for n := 2; n <= 7; n++ {
		members := make([]string, n)
		for i := range members {
			members[i] = fmt.Sprintf("etl-worker-6c8f9d-%c%c/abcdefgh%02d", 'a'+i, 'k'+i, i)
		}
		count := map[string]int{}
		for _, id := range ids {
			count[fleet.Owner(members, id)]++
		}
		want := float64(len(ids)) / float64(n)
		for _, m := range members {
			// 10,000 draws: the standard deviation is under 50 runs; 10% is
			// more than 6 of them.
			if dev := math.Abs(float64(count[m])-want) / want; dev > 0.10 {
				t.Errorf("%d members: %s owns %d runs, %.0f%% off the fair %.0f", n, m, count[m], 100*dev, want)
			}
		}
	}
}

func TestOwnerMovesOnlyTheDepartedMembersRuns(t *testing.T) {
	ids := runIDs(10000)
	before := []string{"a/1", "b/1", "c/1", "d/1"}
	after := []string{"a/1", "b/1", "d/1"} // c/1 departed
	gained := map[string]int{}
	for _, id := range ids {
		was, is := fleet.Owner(before, id), fleet.Owner(after, id)
		if was != "c/1" && was != is {
			t.Fatalf("run %s moved from %s to %s though %s is still a member", id, was, is, was)
		}
		if was == "c/1" {
			gained[is]++
		}
	}
	// c's quarter, 2,500 runs, goes a third to each survivor.
	for _, m := range after {
		if g := gained[m]; g < 700 || g > 970 {
			t.Errorf("%s took %d of the departed member's runs, want about 833", m, g)
		}
	}
}

func TestOwnerGivesAJoiningMemberAShareOfEveryonesRuns(t *testing.T) {
	ids := runIDs(10000)
	before := []string{"a/1", "b/1", "c/1"}
	after := []string{"a/1", "b/1", "c/1", "a/2"} // a rejoined as a new member
	moved := 0
	for _, id := range ids {
		was, is := fleet.Owner(before, id), fleet.Owner(after, id)
		if was != is {
			if is != "a/2" {
				t.Fatalf("run %s moved from %s to %s, not to the new member", id, was, is)
			}
			moved++
		}
	}
	if moved < 2250 || moved > 2750 {
		t.Errorf("%d runs moved to the new member, want about 2500", moved)
	}
}

// pinnedOwners are the owners of run-0, run-1, ... over the members of
// TestOwnerIsDeterministicAndIgnoresTheMembersOrder, without their common
// prefix.
var pinnedOwners = []string{"p4m8z", "b6n3w", "b6n3w", "b6n3w", "k2x9q", "p4m8z", "b6n3w", "p4m8z", "p4m8z", "b6n3w", "p4m8z", "k2x9q"}
