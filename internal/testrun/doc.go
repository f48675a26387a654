// Package testrun runs a part of the system in the background for the
// length of a test, and waits for what the test expects of it:
//
//	stop := testrun.Background(t, "relay", relay.Run) // stopped when t ends, or by stop()
//	testrun.Wait(t, "lag 0", 30*time.Second, func() bool { ... })
//
// and runs a package's main as a program, from its own test binary:
//
//	func TestMain(m *testing.M) { if testrun.IsProgram() { main(); os.Exit(0) }; os.Exit(m.Run()) }
//	out := testrun.Program(t, "SWITCHYARD_NATS_URL="+url)
package testrun
