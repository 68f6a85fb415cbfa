package emulator

import (
	"context"
	"os"
	"testing"
	"time"
)

// Need returns the addresses of a Firestore and a Firebase Auth emulator
// for a test: from FIRESTORE_EMULATOR_HOST and FIREBASE_AUTH_EMULATOR_HOST,
// else started here and stopped when the test ends. When one can be
// neither found nor started the test skips, or fails under CI=true.
func Need(t testing.TB) (firestoreHost, authHost string) {
	t.Helper()
	need := func(err error) {
		t.Helper()
		if err == nil {
			return
		}
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	firestoreHost, authHost = os.Getenv("FIRESTORE_EMULATOR_HOST"), os.Getenv("FIREBASE_AUTH_EMULATOR_HOST")
	// Both can be had, or the test stops before starting either.
	if firestoreHost == "" {
		need(Available())
	}
	if authHost == "" {
		need(AuthAvailable())
	}
	if firestoreHost == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		em, err := Start(ctx, 0)
		cancel()
		if err != nil {
			t.Fatalf("start the Firestore emulator: %v", err)
		}
		t.Cleanup(em.Stop)
		firestoreHost = em.Host
	}
	if authHost == "" {
		ctx, cancel := context.WithTimeout(context.Background(), authStartLimit+time.Minute)
		em, err := StartAuth(ctx)
		cancel()
		if err != nil {
			t.Fatalf("start the Auth emulator: %v", err)
		}
		t.Cleanup(em.Stop)
		authHost = em.Host
	}
	return firestoreHost, authHost
}
