//! Harness for Kith's end-to-end tests: start real relay and client processes on loopback.
