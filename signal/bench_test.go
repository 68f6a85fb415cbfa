package signal

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkDelivery measures, per backend, the time from Send to the signal
// arriving on the recipient's listener, and reports its p50 and p99 over the
// run. Run with a fixed count so the percentiles rest on enough samples:
//
//	go test -run '^$' -bench Delivery -benchtime 300x ./signal/
func BenchmarkDelivery(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			e := be.newEnv(b)
			alice, bob := e.open(b, "alice001"), e.open(b, "bob00001")
			ch, err := bob.Listen(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				if _, err := alice.Send(ctx, Signal{From: "alice001", To: "bob00001", Kind: KindOffer, SessionID: fmt.Sprint("s", i), Payload: make([]byte, 600)}); err != nil {
					b.Fatal(err)
				}
				s := next(b, ch, wait)
				lat = append(lat, time.Since(start))
				if err := bob.Ack(ctx, s.ID); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkExchangeOps counts the Firestore operations one offer and its
// answer cost, both sides together (each side listening, each acking what it
// handled), for an IAM client and for a signed-in one judged by the rules;
// for the latter also the claim look-ups the rules make (billed as reads).
// Presence refreshes are left out: they are per minute, not per exchange.
//
//	go test -run '^$' -bench ExchangeOps -benchtime 50x ./signal/
func BenchmarkExchangeOps(b *testing.B) {
	b.Run("iam", func(b *testing.B) {
		e := newFirestoreEnv(b).(*firestoreEnv)
		open := func(me string) *FirestoreSignaller {
			s, err := OpenFirestore(context.Background(), e.project, me, nil, FirestoreOptions{Heartbeat: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}
		benchExchangeOps(b, open("alice001"), open("bob00001"), nil)
	})
	b.Run("signed-in", func(b *testing.B) {
		e := newAuthEnv(b).(*authEnv)
		opts := FirestoreOptions{Heartbeat: time.Hour}
		benchExchangeOps(b, e.openWith(b, "alice001", nil, opts, nil), e.openWith(b, "bob00001", nil, opts, nil),
			func() int { return ruleGets(b, e.fsHost, e.project) })
	})
}

func benchExchangeOps(b *testing.B, alice, bob *FirestoreSignaller, ruleReads func() int) {
	ctx := context.Background()
	ach, err := alice.Listen(ctx)
	if err != nil {
		b.Fatal(err)
	}
	bch, err := bob.Listen(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// Each listener reads the inbox once more a second after it starts.
	time.Sleep(2 * catchUpDelay)
	base := [2]OpCounts{alice.Ops(), bob.Ops()}
	baseRules := 0
	if ruleReads != nil {
		baseRules = ruleReads()
	}
	b.ResetTimer()
	for i := range b.N {
		session := fmt.Sprint("x", i)
		if _, err := alice.Send(ctx, Signal{From: alice.me, To: bob.me, Kind: KindOffer, SessionID: session, Payload: []byte("offer")}); err != nil {
			b.Fatal(err)
		}
		offer := next(b, bch, wait)
		if err := bob.Ack(ctx, offer.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := bob.Send(ctx, Signal{From: bob.me, To: alice.me, Kind: KindAnswer, SessionID: session, Payload: []byte("answer")}); err != nil {
			b.Fatal(err)
		}
		answer := next(b, ach, wait)
		if err := alice.Ack(ctx, answer.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	a, o := alice.Ops(), bob.Ops()
	n := float64(b.N)
	b.ReportMetric(float64(a.Reads+o.Reads-base[0].Reads-base[1].Reads)/n, "reads/exchange")
	b.ReportMetric(float64(a.Writes+o.Writes-base[0].Writes-base[1].Writes)/n, "writes/exchange")
	b.ReportMetric(float64(a.Deletes+o.Deletes-base[0].Deletes-base[1].Deletes)/n, "deletes/exchange")
	if ruleReads != nil {
		// Let the emulator's coverage catch up with the last listener
		// evaluation.
		time.Sleep(200 * time.Millisecond)
		b.ReportMetric(float64(ruleReads()-baseRules)/n, "rule-reads/exchange")
	}
}

// percentile reads the p-th percentile of sorted samples (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

// BenchmarkJoin is a profile's first start in a group, as the user waits
// for it: sign up with the Auth emulator, claim the ID through the rules,
// store the code. (Against Google's services add the round trips.)
//
//	go test -run '^$' -bench Join -benchtime 30x ./signal/
func BenchmarkJoin(b *testing.B) {
	e := newAuthEnv(b).(*authEnv)
	code := JoinCode{ProjectID: e.project, APIKey: testAPIKey}
	opts := JoinOptions{AuthEmulator: e.authHost, FirestoreEmulator: e.fsHost}
	dirs := make([]string, b.N)
	for i := range dirs {
		dirs[i] = b.TempDir()
	}
	b.ResetTimer()
	for i := range b.N {
		if err := Join(context.Background(), dirs[i], fmt.Sprintf("joiner%08d", i), code, opts); err != nil {
			b.Fatal(err)
		}
	}
}
