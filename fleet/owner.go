package fleet

import "hash/fnv"

// Owner returns which of members owns the run runID: the member with the
// highest weight, where a member's weight for a run is the 64-bit FNV-1a
// hash of the member's name, a zero byte and runID, passed through
// MurmurHash3's 64-bit finalizer (rendezvous, or highest-random-weight,
// hashing). Ties, which need equal hashes, go to the smaller name. It
// returns "" when members is empty; the order of members does not matter.
//
// Every replica that computes Owner over the same members gets the same
// answer, and when one member leaves only the runs it owned move, spread
// evenly over the others; a member that joins takes about 1/n of every
// other member's runs. The hash is part of the fleet's protocol: replicas
// of different versions of this package must agree on it, so it never
// changes.
func Owner(members []string, runID string) string {
	var best string
	var bestWeight uint64
	for i, m := range members {
		w := weight(m, runID)
		if i == 0 || w > bestWeight || (w == bestWeight && m < best) {
			best, bestWeight = m, w
		}
	}
	return best
}

// weight is member's rendezvous weight for runID.
func weight(member, runID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	h.Write([]byte{0})
	h.Write([]byte(runID))
	return fmix64(h.Sum64())
}

// fmix64 is MurmurHash3's finalizer: it spreads every input bit over the
// output, which FNV-1a alone does poorly for inputs that differ only in
// their first bytes (the member names, here).
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
