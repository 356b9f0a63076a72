package res

// PinMismatchesIn is pinMismatches for the tests: a test binary records no
// dependencies to read.
var PinMismatchesIn = pinMismatches
