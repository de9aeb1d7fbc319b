// Package g711 decodes G.711 samples (ITU-T G.711), as sox and Asterisk do:
// the softphone decodes what it hears, the prompt check decodes .ulaw and
// .alaw recordings.
package g711

// ULaw decodes one mu-law byte.
func ULaw(u byte) int16 {
	u = ^u
	t := (int16(u&0x0F) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return 0x84 - t
	}
	return t - 0x84
}

// ALaw decodes one A-law byte.
func ALaw(a byte) int16 {
	a ^= 0x55
	t := int16(a&0x0F) << 4
	seg := (a & 0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return t
	}
	return -t
}
