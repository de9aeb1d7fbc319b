// Package layout holds the house in shape: its tests check that imports run
// down the layers, that docs/architecture.md's package table is the tree
// as it is, and that docs/pci.md's control matrix names only tests that
// exist. It has no code.
package layout
