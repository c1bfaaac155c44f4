#!/bin/sh
# tests/k8s/make_certs.sh DIR - a test CA and its certificates for the fake
# Kubernetes API server, made with the openssl command at test time (no key
# is ever committed):
#   DIR/ca.crt DIR/ca.key          the CA (CN fake-kube-ca)
#   DIR/server.crt DIR/server.key  for 127.0.0.1, ::1 and localhost
#   DIR/client.crt DIR/client.key  a client (CN test-user, O system:masters)
# EC P-256 keys, valid for 7 days. Run it twice in two directories for a
# second, unrelated CA. Exit status: 0, or 1 with openssl's complaint.
set -eu

dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077

serial() { printf '0x%s' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"; }

cat > certs.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = fake-kube-ca
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,IP:::1,DNS:localhost
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
EOF

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -config certs.cnf -extensions v3_ca \
	-days 7 -sha256 -set_serial "$(serial)" -out ca.crt

# name, subject, extensions section
issue() {
	key "$1.key"
	openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "$(serial)" \
		-days 7 -sha256 -extfile certs.cnf -extensions "$3" -out "$1.crt" 2>/dev/null
	rm -f "$1.csr"
}
issue server "/CN=127.0.0.1" server
issue client "/O=system:masters/CN=test-user" client
rm -f certs.cnf
