// Package layout holds the house in shape: its tests check that imports run
// down the layers and that docs/architecture.md's package table is the tree
// as it is. It has no code.
package layout
