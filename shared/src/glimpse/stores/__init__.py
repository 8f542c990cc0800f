"""Store drivers behind one async interface, plus the cross-driver wrapper and registry."""
