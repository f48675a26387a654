package handlers_test

// childEnv makes the test binary run as a consumer process (see
// TestKilledConsumer) instead of running tests.
const childEnv = "SWITCHYARD_HANDLERS_TEST_CHILD"

func childMain() int { return 2 }
