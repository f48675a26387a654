package bus_test

// childEnv makes the test binary run as a relay process (see
// TestKilledRelay) instead of running tests.
const childEnv = "SWITCHYARD_BUS_TEST_CHILD"

func childMain() int { return 0 }
