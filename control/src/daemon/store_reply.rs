//! How a failed store operation reaches the API caller (shared by the
//! request handler and the policy operations).

use crate::api::{ApiError, ErrorKind};
use crate::store::StoreError;

/// A store failure as an API error: a write to a key another owner manages
/// is a conflict; anything else says the store is unavailable, with the
/// causes.
pub(super) fn store_error(e: StoreError) -> ApiError {
    if matches!(e, StoreError::Managed { .. }) {
        return ApiError::new(ErrorKind::Conflict, e.to_string());
    }
    ApiError::unavailable("the cluster store", crate::store::error_chain(&e))
}
