package config

import (
	"errors"

	"github.com/ivr-pin/ivr-pin/internal/secretfile"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// softwareKey is a zone PIN key given in software, for a lab: its file
// (the _FILE twin, read into bytes that are parsed and wiped, never a
// string) or its value in the environment, parsed once into its cipher.
// The configuration keeps no copy of the hex. The current key (NI_ZPK) and
// a rotation's next key (NI_ZPK_NEXT) are each one.
type softwareKey struct {
	file string
	key  *secret.Key
	err  error
}

// given reports whether the key was given at all, parsed or not.
func (s *softwareKey) given(value string) bool {
	return value != "" || s.file != "" || s.key != nil || s.err != nil
}

// load parses the key, from its file or from *value, into its cipher and
// clears *value. A value from the environment stays in the process's
// environment block, which is one reason production keys live in a token.
func (s *softwareKey) load(c *Config, name string, value *string) error {
	if s.file == "" {
		if *value == "" {
			return nil
		}
		if _, err := s.parse(name, c.ZPKAlgorithm(), *value); err != nil {
			return err
		}
		*value = ""
		return nil
	}
	b, err := secretfile.Read(s.file)
	if err != nil {
		c.refuse(name)
		return problem(name+FileSuffix, err.Error())
	}
	defer secret.Zero(b)
	if s.key, err = parseZPK(c.ZPKAlgorithm(), b); err != nil {
		s.err = problem(name+FileSuffix, err.Error())
	}
	return s.err
}

// parse is the key's cipher, parsed from value the first time (nil, nil
// when none was given).
func (s *softwareKey) parse(name string, alg secret.Algorithm, value string) (*secret.Key, error) {
	if s.key != nil || s.err != nil || value == "" {
		return s.key, s.err
	}
	b := []byte(value)
	defer secret.Zero(b)
	k, err := parseZPK(alg, b)
	if err != nil {
		s.err = problem(name, err.Error())
		return nil, s.err
	}
	s.key = k
	return k, nil
}

// parseZPK decodes hex key material, refuses a weak key, and builds the
// key's cipher; the decoded bytes are wiped.
func parseZPK(alg secret.Algorithm, hexKey []byte) (*secret.Key, error) {
	raw, err := secret.DecodeHex(hexKey)
	if err != nil {
		return nil, err
	}
	defer secret.Zero(raw)
	if w := secret.Weakness(alg, raw); w != "" {
		return nil, errors.New("the key " + w)
	}
	return secret.NewKey(alg, raw)
}

// loadKeys parses the software zone PIN keys, the current one and the
// next, into their ciphers.
func (c *Config) loadKeys() []error {
	var out []error
	if err := c.zpkSoft.load(c, "NI_ZPK", &c.NIZPK); err != nil {
		out = append(out, err)
	}
	if err := c.nextSoft.load(c, "NI_ZPK_NEXT", &c.NIZPKNext); err != nil {
		out = append(out, err)
	}
	return out
}
