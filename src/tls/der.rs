//! Just enough DER to read two things of a certificate that webpki does
//! not tell once it has refused it for being a CA: whether it names
//! itself as its issuer, and whether its extended key usage lets it serve
//! TLS. Anything malformed reads as "no".

const SEQUENCE: u8 = 0x30;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
/// A TBSCertificate's `[0]` (its version) and `[3]` (its extensions).
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
/// 2.5.29.37, extKeyUsage.
const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// 1.3.6.1.5.5.7.3.1, serverAuth.
const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// 2.5.29.37.0, anyExtendedKeyUsage.
const ANY_PURPOSE: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// The first TLV of `input`: its tag, its contents, and what follows.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let (bytes, rest) = rest.split_at_checked(n)?;
            let len = bytes
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b));
            (len, rest)
        }
        _ => return None,
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The TLVs of `input`, one after another, as (tag, contents).
fn all(mut input: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tag, contents, rest) = tlv(input)?;
        out.push((tag, contents));
        input = rest;
    }
    Some(out)
}

/// The fields of a certificate's TBSCertificate, in order.
fn tbs_fields(cert: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let (SEQUENCE, cert, _) = tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    all(tbs)
}

/// Whether `cert` names itself as its issuer: a self-signed certificate.
pub(super) fn names_itself(cert: &[u8]) -> bool {
    let Some(fields) = tbs_fields(cert) else {
        return false;
    };
    // [0] version (may be absent), serial, signature, issuer, validity, subject.
    let at = usize::from(fields.first().is_some_and(|f| f.0 == VERSION));
    match (fields.get(at + 2), fields.get(at + 4)) {
        (Some(issuer), Some(subject)) => issuer.0 == SEQUENCE && issuer == subject,
        _ => false,
    }
}

/// Whether `cert`'s extended key usage lets it serve TLS: it has none
/// (any use), or it lists serverAuth or anyExtendedKeyUsage.
pub(super) fn may_serve_tls(cert: &[u8]) -> bool {
    let Some(fields) = tbs_fields(cert) else {
        return false;
    };
    let Some(&(_, extensions)) = fields.iter().find(|f| f.0 == EXTENSIONS) else {
        return true;
    };
    let Some((SEQUENCE, extensions, _)) = tlv(extensions) else {
        return false;
    };
    let Some(extensions) = all(extensions) else {
        return false;
    };
    for (tag, extension) in extensions {
        let (SEQUENCE, Some((OID, id, rest))) = (tag, tlv(extension)) else {
            return false;
        };
        if id != EXT_KEY_USAGE {
            continue;
        }
        // `critical` is optional, then the value, wrapped in an OCTET STRING.
        let rest = match tlv(rest) {
            Some((BOOLEAN, _, after)) => after,
            _ => rest,
        };
        let Some((OCTET_STRING, value, _)) = tlv(rest) else {
            return false;
        };
        let Some((SEQUENCE, purposes, _)) = tlv(value) else {
            return false;
        };
        return all(purposes).is_some_and(|purposes| {
            purposes
                .iter()
                .any(|&(tag, p)| tag == OID && (p == SERVER_AUTH || p == ANY_PURPOSE))
        });
    }
    true
}
