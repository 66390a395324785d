// Structure-only PEM fixtures: the mesh configuration model checks PEM framing, not X.509
// contents, so these stand in for an upstream CA's files.
export const FIXTURE_CERT =
  '-----BEGIN CERTIFICATE-----\nMIIBfixtureCERT=\n-----END CERTIFICATE-----\n';
export const FIXTURE_OTHER_CERT =
  '-----BEGIN CERTIFICATE-----\nMIIBfixtureROOT=\n-----END CERTIFICATE-----\n';
export const FIXTURE_KEY =
  '-----BEGIN PRIVATE KEY-----\nMIGHfixtureKEY=\n-----END PRIVATE KEY-----\n';
export const FIXTURE_EC_KEY =
  '-----BEGIN EC PRIVATE KEY-----\nMHcfixtureKEY=\n-----END EC PRIVATE KEY-----\n';
