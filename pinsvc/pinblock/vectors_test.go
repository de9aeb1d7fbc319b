package pinblock

// knownTDESCiphertext was computed outside Go with:
//
//	printf 041274EDCBA9876F | xxd -r -p |
//	  openssl enc -des-ede-ecb -nopad -K 0123456789ABCDEFFEDCBA9876543210 | xxd -p
const knownTDESCiphertext = "C03D21CDBCB0C58B"
