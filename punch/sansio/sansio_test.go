package sansio

import (
	"crypto/rand"
	"testing"
	"time"
)

func TestEarliestIgnoresZero(t *testing.T) {
	t0 := time.Unix(1000, 0)
	t1 := t0.Add(time.Second)
	cases := []struct {
		in   []time.Time
		want time.Time
	}{
		{nil, time.Time{}},
		{[]time.Time{{}, {}}, time.Time{}},
		{[]time.Time{{}, t1}, t1},
		{[]time.Time{t1, {}, t0}, t0},
		{[]time.Time{t0, t1}, t0},
	}
	for i, c := range cases {
		if got := Earliest(c.in...); !got.Equal(c.want) {
			t.Errorf("case %d: Earliest = %v, want %v", i, got, c.want)
		}
	}
}

func TestDue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	if Due(time.Time{}, t0) {
		t.Error("a zero deadline is never due")
	}
	if Due(t0, t0.Add(-time.Nanosecond)) {
		t.Error("due before the deadline")
	}
	if !Due(t0, t0) || !Due(t0, t0.Add(time.Hour)) {
		t.Error("not due at or after the deadline")
	}
}

func TestOverride(t *testing.T) {
	def := 5 * time.Second
	if got := Override(0, def); got != def {
		t.Errorf("zero: %v, want the default", got)
	}
	if got := Override(time.Second, def); got != time.Second {
		t.Errorf("positive: %v, want it", got)
	}
	if got := Override(-1, def); got != 0 {
		t.Errorf("negative: %v, want 0 (off)", got)
	}
}

func TestRand(t *testing.T) {
	if Rand(nil) != rand.Reader {
		t.Error("nil is not crypto/rand")
	}
	r := &fixedReader{}
	if Rand(r) != r {
		t.Error("a given reader is not kept")
	}
}

type fixedReader struct{}

func (*fixedReader) Read(b []byte) (int, error) { return len(b), nil }
