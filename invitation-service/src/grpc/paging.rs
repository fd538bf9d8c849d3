//! Page sizes and opaque page tokens for the list RPCs.

use tonic::Status;

use crate::{domain::DomainError, error::Error};

/// Page size when the request gives none.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page; larger requests get this many.
pub(crate) const MAX_PAGE_SIZE: usize = 100;

fn invalid(field: &'static str, reason: &str) -> Status {
    Status::from(Error::from(DomainError::InvalidArgument {
        field,
        reason: reason.to_owned(),
    }))
}

/// The page size and the cursor a list request asks for.
pub(crate) fn parse(page_size: i32, page_token: &str) -> Result<(usize, Option<Vec<u8>>), Status> {
    let limit = match usize::try_from(page_size) {
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(n) => n.min(MAX_PAGE_SIZE),
        Err(_) => return Err(invalid("page_size", "must not be negative")),
    };
    let after = if page_token.is_empty() {
        None
    } else {
        let bytes = hex::decode(page_token)
            .ok()
            .filter(|b| !b.is_empty() && b.len() <= 256)
            .ok_or_else(|| {
                invalid(
                    "page_token",
                    "is not a token this service issued; pass next_page_token as given",
                )
            })?;
        Some(bytes)
    };
    Ok((limit, after))
}

/// The token for the next page; empty at the end.
pub(crate) fn token(next: Option<&[u8]>) -> String {
    next.map(hex::encode).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_at_their_boundaries() {
        assert_eq!(parse(0, "").unwrap().0, DEFAULT_PAGE_SIZE);
        assert_eq!(parse(1, "").unwrap().0, 1);
        assert_eq!(parse(100, "").unwrap().0, 100);
        assert_eq!(parse(101, "").unwrap().0, 100);
        assert_eq!(parse(-1, "").unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let (_, after) = parse(10, &token(Some(b"abc"))).unwrap();
        assert_eq!(after.as_deref(), Some(&b"abc"[..]));
        assert_eq!(parse(10, "zz").unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(token(None), "");
    }
}
