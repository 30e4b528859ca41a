// Command custodes-verify checks custodes' checkpoints and proofs with Go's reference packages
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, which custodes did not write.
//
// It reads one JSON request on stdin and writes one JSON answer on stdout: for every
// checkpoint, inclusion proof and consistency proof, whether Go accepts it and, if not, Go's
// error. Built in GOPATH mode (GO111MODULE=off) against Debian's golang-golang-x-mod-dev, so it
// needs no network. The test in tests/conformance/test_go_reference.py drives it.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type request struct {
	VerifierKey string        `json:"vkey"`
	Checkpoints []string      `json:"checkpoints"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
}

// Hashes are standard base64; proof hashes are in RFC 9162 order (leaf side first), which is
// also the order of tlog.RecordProof and tlog.TreeProof.
type inclusion struct {
	Index    int64    `json:"index"`
	Size     int64    `json:"size"`
	LeafHash string   `json:"leaf_hash"`
	Proof    []string `json:"proof"`
	Root     string   `json:"root"`
}

type consistency struct {
	Size1 int64    `json:"size1"`
	Size2 int64    `json:"size2"`
	Root1 string   `json:"root1"`
	Root2 string   `json:"root2"`
	Proof []string `json:"proof"`
}

type result struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Origin string `json:"origin,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Root   string `json:"root,omitempty"`
}

type answer struct {
	Checkpoints []result `json:"checkpoints"`
	Inclusion   []result `json:"inclusion"`
	Consistency []result `json:"consistency"`
}

func hash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return h, err
	}
	if len(b) != tlog.HashSize {
		return h, fmt.Errorf("hash is %d bytes, want %d", len(b), tlog.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

func hashes(list []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, len(list))
	for _, s := range list {
		h, err := hash(s)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func fail(err error) result { return result{OK: false, Error: err.Error()} }

// checkpoint opens a signed checkpoint with note.Open and parses its C2SP body
// (origin, decimal size, base64 root hash, optional extension lines).
func checkpoint(text string, verifiers note.Verifiers) result {
	n, err := note.Open([]byte(text), verifiers)
	if err != nil {
		return fail(err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		return fail(fmt.Errorf("checkpoint body has %d lines", len(lines)))
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return fail(fmt.Errorf("bad checkpoint size %q", lines[1]))
	}
	root, err := hash(lines[2])
	if err != nil {
		return fail(err)
	}
	return result{OK: true, Origin: lines[0], Size: size, Root: root.String()}
}

func checkRecord(c inclusion) result {
	leaf, err := hash(c.LeafHash)
	if err != nil {
		return fail(err)
	}
	root, err := hash(c.Root)
	if err != nil {
		return fail(err)
	}
	proof, err := hashes(c.Proof)
	if err != nil {
		return fail(err)
	}
	if err := tlog.CheckRecord(tlog.RecordProof(proof), c.Size, root, c.Index, leaf); err != nil {
		return fail(err)
	}
	return result{OK: true}
}

func checkTree(c consistency) result {
	root1, err := hash(c.Root1)
	if err != nil {
		return fail(err)
	}
	root2, err := hash(c.Root2)
	if err != nil {
		return fail(err)
	}
	proof, err := hashes(c.Proof)
	if err != nil {
		return fail(err)
	}
	// CheckTree(p, t, th, n, h): the tree of size t with hash th contains the tree of size n
	// with hash h as a prefix.
	if err := tlog.CheckTree(tlog.TreeProof(proof), c.Size2, root2, c.Size1, root1); err != nil {
		return fail(err)
	}
	return result{OK: true}
}

func main() {
	var req request
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "custodes-verify: bad request:", err)
		os.Exit(2)
	}
	v, err := note.NewVerifier(req.VerifierKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, "custodes-verify: bad verifier key:", err)
		os.Exit(2)
	}
	verifiers := note.VerifierList(v)
	ans := answer{Checkpoints: []result{}, Inclusion: []result{}, Consistency: []result{}}
	for _, text := range req.Checkpoints {
		ans.Checkpoints = append(ans.Checkpoints, checkpoint(text, verifiers))
	}
	for _, c := range req.Inclusion {
		ans.Inclusion = append(ans.Inclusion, checkRecord(c))
	}
	for _, c := range req.Consistency {
		ans.Consistency = append(ans.Consistency, checkTree(c))
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	if err := enc.Encode(ans); err != nil {
		fmt.Fprintln(os.Stderr, "custodes-verify:", err)
		os.Exit(2)
	}
	os.Stdout.Write(out.Bytes())
}
