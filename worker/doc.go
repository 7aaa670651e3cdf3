// Package worker composes kubeworker's parts into a Worker that runs a
// unit of work as a Kubernetes Job and follows it to a typed result.
//
// Its pieces can be used alone: a [Creator] creates a prepared Job exactly
// once per run, retrying only what a retry can fix ([Retriable]).
package worker
