package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"minik.dev/minik/atomicfile"
)

const (
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
	dirMode  fs.FileMode = 0o700
)

// readPEM returns the first PEM block of path, or nil when the file is missing
// or holds no PEM: both mean "regenerate". Other read errors are returned so a
// file we cannot read is never silently replaced.
func readPEM(path string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	return block, nil
}

// loadCert returns nil (and no error) when the certificate is missing or
// unparseable.
func loadCert(path string) (*x509.Certificate, error) {
	block, err := readPEM(path)
	if err != nil || block == nil || block.Type != "CERTIFICATE" {
		return nil, err
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil
	}
	return cert, nil
}

// loadKey returns nil (and no error) when the key is missing or unparseable.
// Besides our own PKCS8 it accepts the SEC1/PKCS1 forms other tools write.
func loadKey(path string) (crypto.Signer, error) {
	block, err := readPEM(path)
	if err != nil || block == nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, nil
	}
	// X25519 keys parse from PKCS8 but cannot sign.
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil
	}
	return signer, nil
}

// loadPub returns nil (and no error) when the public key is missing or
// unparseable.
func loadPub(path string) (crypto.PublicKey, error) {
	block, err := readPEM(path)
	if err != nil || block == nil || block.Type != "PUBLIC KEY" {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, nil
	}
	return pub, nil
}

func writeCert(path string, der []byte) error {
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), certMode)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key %s: %w", path, err)
	}
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), keyMode)
}

func writePub(path string, pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("marshal public key %s: %w", path, err)
	}
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), certMode)
}

// fixMode tightens or restores the mode of a reused file without rewriting it.
func fixMode(path string, mode fs.FileMode) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode().Perm() == mode {
		return nil
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}

// FirstExpiry is the certificate in dir that expires first, and when;
// ("", zero time) when dir holds none.
func FirstExpiry(dir string) (string, time.Time, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return "", time.Time{}, err
	}
	var first string
	var at time.Time
	for _, p := range paths {
		cert, err := loadCert(p)
		if err != nil {
			return "", time.Time{}, err
		}
		if cert == nil {
			return "", time.Time{}, fmt.Errorf("%s is not a certificate", p)
		}
		if first == "" || cert.NotAfter.Before(at) {
			first, at = filepath.Base(p), cert.NotAfter
		}
	}
	return first, at, nil
}
