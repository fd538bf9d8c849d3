//! The helpers every sled transaction closure uses: sled may run a closure
//! more than once, and only an abort carries a value of ours out of it.

use sled::transaction::{ConflictableTransactionError, TransactionError};

/// What a transaction closure returns: a value, or an abort carrying `E`.
pub type TxResult<T, E> = Result<T, ConflictableTransactionError<E>>;

/// Aborts the transaction with `e`: nothing it wrote is applied.
///
/// # Errors
///
/// Always: that is its purpose.
pub fn abort<T, E>(e: impl Into<E>) -> TxResult<T, E> {
    Err(aborted(e))
}

/// The abort for `e`, for `map_err`.
pub fn aborted<E>(e: impl Into<E>) -> ConflictableTransactionError<E> {
    ConflictableTransactionError::Abort(e.into())
}

/// A finished transaction's result, with sled's own failure as an `E`.
///
/// # Errors
///
/// The closure's abort, or sled's failure.
pub fn finish<T, E: From<sled::Error>>(result: Result<T, TransactionError<E>>) -> Result<T, E> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => E::from(e),
    })
}

#[cfg(test)]
mod tests {
    use sled::Transactional as _;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum Failure {
        Refused(&'static str),
        Sled,
    }

    impl From<sled::Error> for Failure {
        fn from(_: sled::Error) -> Self {
            Self::Sled
        }
    }

    #[test]
    fn an_abort_writes_nothing_and_comes_out_as_itself() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let result: Result<(), Failure> = finish((&tree,).transaction(|(t,)| {
            t.insert("k", "v")?;
            abort(Failure::Refused("no"))
        }));
        assert_eq!(result, Err(Failure::Refused("no")));
        assert_eq!(tree.get("k").unwrap(), None);

        let written: Result<u8, Failure> = finish((&tree,).transaction(|(t,)| {
            t.insert("k", "v")?;
            Ok(1)
        }));
        assert_eq!(written, Ok(1));
        assert!(tree.get("k").unwrap().is_some());
    }
}
