//! The one table of error codes: each row is a variant of [`ErrorCode`], its HTTP status, its
//! stable snake_case `code`, its title and its default detail in Vietnamese and English.
//! `error_codes!` turns the table into the enum and its functions, so adding a code is adding
//! a row, and no code can lack a status or a text.

use axum::http::StatusCode;

use super::lang::Lang;

macro_rules! error_codes {
    ($(
        $variant:ident($status:ident, $code:literal) {
            title: ($title_vi:literal, $title_en:literal $(,)?),
            detail: ($detail_vi:literal, $detail_en:literal $(,)?) $(,)?
        }
    )*) => {
        /// Stable machine-readable error codes (DESIGN.md, "API contract").
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }

            /// The problem's `code`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The problem `title`: short, the same for every occurrence of a code.
            pub fn title(self, lang: Lang) -> &'static str {
                let (vi, en) = match self {
                    $(ErrorCode::$variant => ($title_vi, $title_en),)*
                };
                in_language(lang, vi, en)
            }

            /// The problem `detail` when nothing more specific is known.
            pub fn default_detail(self, lang: Lang) -> &'static str {
                let (vi, en) = match self {
                    $(ErrorCode::$variant => ($detail_vi, $detail_en),)*
                };
                in_language(lang, vi, en)
            }
        }
    };
}

fn in_language(lang: Lang, vi: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
}

error_codes! {
    MalformedBody(BAD_REQUEST, "malformed_body") {
        title: ("Nội dung yêu cầu sai định dạng", "Malformed request body"),
        detail: ("Không đọc được nội dung yêu cầu.", "The request body could not be read."),
    }
    UnsupportedMediaType(BAD_REQUEST, "unsupported_media_type") {
        title: ("Kiểu nội dung không được hỗ trợ", "Unsupported media type"),
        detail: (
            "Kiểu nội dung của yêu cầu không được hỗ trợ.",
            "The request's content type is not supported.",
        ),
    }
    Unauthenticated(UNAUTHORIZED, "unauthenticated") {
        title: ("Chưa xác thực", "Not authenticated"),
        detail: (
            "Thiếu thông tin xác thực, hoặc thông tin đã hết hạn hay không hợp lệ.",
            "Credentials are missing, expired or invalid.",
        ),
    }
    Forbidden(FORBIDDEN, "forbidden") {
        title: ("Không có quyền", "Forbidden"),
        detail: (
            "Vai trò của bạn không được thực hiện thao tác này.",
            "Your role may not perform this action.",
        ),
    }
    NotFound(NOT_FOUND, "not_found") {
        title: ("Không tìm thấy", "Not found"),
        detail: ("Không tìm thấy đối tượng yêu cầu.", "The requested object was not found."),
    }
    MethodNotAllowed(METHOD_NOT_ALLOWED, "method_not_allowed") {
        title: ("Phương thức không được phép", "Method not allowed"),
        detail: (
            "Địa chỉ này không hỗ trợ phương thức HTTP đã dùng.",
            "This path does not support the HTTP method used.",
        ),
    }
    AlreadyExists(CONFLICT, "already_exists") {
        title: ("Đã tồn tại", "Already exists"),
        detail: (
            "Một đối tượng có cùng giá trị định danh đã tồn tại.",
            "An object with the same identifying value already exists.",
        ),
    }
    PhoneTaken(CONFLICT, "phone_taken") {
        title: ("Số điện thoại đã được đăng ký", "Phone already registered"),
        detail: ("Số điện thoại này đã có tài khoản.", "This phone number already has an account."),
    }
    BodyTooLarge(PAYLOAD_TOO_LARGE, "body_too_large") {
        title: ("Nội dung quá lớn", "Request body too large"),
        detail: ("Nội dung yêu cầu quá lớn.", "The request body is too large."),
    }
    ValidationFailed(UNPROCESSABLE_ENTITY, "validation_failed") {
        title: ("Dữ liệu không hợp lệ", "Validation failed"),
        detail: ("Dữ liệu gửi lên không hợp lệ.", "The submitted data is not valid."),
    }
    OtpInvalid(UNPROCESSABLE_ENTITY, "otp_invalid") {
        title: ("Mã xác thực không hợp lệ", "Invalid one-time code"),
        detail: (
            "Mã xác thực sai, đã hết hạn hoặc đã được dùng.",
            "The one-time code is wrong, expired or already used.",
        ),
    }
    RateLimited(TOO_MANY_REQUESTS, "rate_limited") {
        title: ("Quá nhiều yêu cầu", "Too many requests"),
        detail: (
            "Bạn đã gửi quá nhiều yêu cầu; hãy thử lại sau.",
            "Too many requests; try again later.",
        ),
    }
    IdempotencyKeyRequired(BAD_REQUEST, "idempotency_key_required") {
        title: ("Thiếu khóa Idempotency-Key", "Idempotency-Key required"),
        detail: (
            "Yêu cầu chuyển tiền phải có header Idempotency-Key (1–255 ký tự).",
            "Money-moving requests need an Idempotency-Key header (1-255 characters).",
        ),
    }
    PaymentPinRequired(BAD_REQUEST, "payment_pin_required") {
        title: ("Thiếu mã PIN thanh toán", "Payment PIN required"),
        detail: (
            "Yêu cầu thanh toán phải có header X-Payment-Pin.",
            "Payments need the X-Payment-Pin header.",
        ),
    }
    IdempotencyInProgress(CONFLICT, "idempotency_in_progress") {
        title: ("Yêu cầu đang được xử lý", "Request in progress"),
        detail: (
            "Một yêu cầu với cùng Idempotency-Key đang được xử lý; hãy thử lại sau giây lát.",
            "A request with the same Idempotency-Key is still being processed; retry shortly.",
        ),
    }
    InsufficientFunds(CONFLICT, "insufficient_funds") {
        title: ("Không đủ số dư", "Insufficient funds"),
        detail: (
            "Số dư ví không đủ cho giao dịch này.",
            "The wallet balance does not cover this payment.",
        ),
    }
    LimitExceeded(CONFLICT, "limit_exceeded") {
        title: ("Vượt hạn mức", "Limit exceeded"),
        detail: (
            "Giao dịch vượt hạn mức tháng của ví.",
            "The payment exceeds the wallet's monthly limit.",
        ),
    }
    NationalIdTaken(CONFLICT, "national_id_taken") {
        title: ("Số định danh đã được dùng", "National ID already used"),
        detail: (
            "Số định danh này đã xác thực cho một ví khác.",
            "This national ID number already verifies another wallet.",
        ),
    }
    WalletNotVerified(CONFLICT, "wallet_not_verified") {
        title: ("Ví chưa xác thực", "Wallet not verified"),
        detail: (
            "Ví phải được xác thực danh tính trước khi giữ tiền.",
            "The wallet must be identity-verified before it holds money.",
        ),
    }
    PaymentPinNotSet(CONFLICT, "payment_pin_not_set") {
        title: ("Chưa đặt mã PIN", "Payment PIN not set"),
        detail: ("Hãy đặt mã PIN thanh toán trước.", "Set a payment PIN first."),
    }
    IdempotencyKeyReused(UNPROCESSABLE_ENTITY, "idempotency_key_reused") {
        title: ("Khóa Idempotency-Key đã dùng cho yêu cầu khác", "Idempotency key reused"),
        detail: (
            "Khóa này đã được dùng cho một yêu cầu có nội dung khác.",
            "This key was already used for a different request.",
        ),
    }
    PaymentPinInvalid(UNPROCESSABLE_ENTITY, "payment_pin_invalid") {
        title: ("Sai mã PIN", "Wrong payment PIN"),
        detail: ("Mã PIN thanh toán không đúng.", "The payment PIN is wrong."),
    }
    PaymentPinLocked(TOO_MANY_REQUESTS, "payment_pin_locked") {
        title: ("Tạm khóa thanh toán", "Payments locked"),
        detail: (
            "Nhập sai mã PIN quá nhiều lần; thanh toán tạm khóa 15 phút.",
            "Too many wrong PINs; wallet payments are locked for 15 minutes.",
        ),
    }
    OrderRefConflict(CONFLICT, "order_ref_conflict") {
        title: ("Trùng mã đơn của cửa hàng", "order_ref already used"),
        detail: (
            "Mã đơn (order_ref) này đã dùng cho một đơn có nội dung khác.",
            "This order_ref already names an order with other details.",
        ),
    }
    AlreadyPaid(CONFLICT, "already_paid") {
        title: ("Đơn đã được thanh toán", "Already paid"),
        detail: ("Đơn hàng này đã được thanh toán.", "This order is already paid."),
    }
    OrderCancelled(CONFLICT, "order_cancelled") {
        title: ("Đơn đã bị hủy", "Order cancelled"),
        detail: ("Đơn hàng này đã bị hủy.", "This order was cancelled."),
    }
    OrderExpired(CONFLICT, "order_expired") {
        title: ("Đơn đã hết hạn", "Order expired"),
        detail: ("Đơn hàng này đã hết hạn thanh toán.", "This order has expired."),
    }
    OrderNotPaid(CONFLICT, "order_not_paid") {
        title: ("Đơn chưa được thanh toán", "Order not paid"),
        detail: ("Chỉ hoàn tiền được cho đơn đã thanh toán.", "Only a paid order can be refunded."),
    }
    InsufficientMerchantBalance(CONFLICT, "insufficient_merchant_balance") {
        title: ("Số dư cửa hàng không đủ", "Insufficient merchant balance"),
        detail: (
            "Số dư khả dụng của cửa hàng không đủ để hoàn tiền.",
            "The merchant's available balance does not cover this refund.",
        ),
    }
    RefundExceedsRefundable(CONFLICT, "refund_exceeds_refundable") {
        title: ("Vượt số tiền có thể hoàn", "Refund too large"),
        detail: (
            "Tổng tiền hoàn vượt quá số tiền đã thanh toán.",
            "Refunds would exceed the amount paid.",
        ),
    }
    CallbackUrlNotSet(CONFLICT, "callback_url_not_set") {
        title: ("Chưa có địa chỉ nhận callback", "No callback URL"),
        detail: (
            "Cửa hàng chưa đặt địa chỉ nhận callback (callback_url) trong hồ sơ.",
            "Set a callback_url in the merchant profile first.",
        ),
    }
    InvalidTransition(CONFLICT, "invalid_transition") {
        title: (
            "Trạng thái hồ sơ không cho phép thao tác này",
            "Action not allowed in this status",
        ),
        detail: (
            "Hồ sơ đang ở trạng thái không cho phép thao tác này; xem current_status và allowed_actions.",
            "The dossier's status does not allow this action; see current_status and allowed_actions.",
        ),
    }
    FeeUnpaid(CONFLICT, "fee_unpaid") {
        title: ("Phí, lệ phí chưa được thanh toán", "Fee unpaid"),
        detail: (
            "Chưa thể trả kết quả khi phí, lệ phí của hồ sơ chưa được thanh toán.",
            "The result cannot be returned while the dossier's fee is unpaid.",
        ),
    }
    BillRefConflict(CONFLICT, "bill_ref_conflict") {
        title: ("Trùng mã hóa đơn của đơn vị thu", "Bill reference already used"),
        detail: (
            "Mã tham chiếu (reference) này đã dùng cho một hóa đơn có nội dung khác.",
            "This reference already names a bill with other details.",
        ),
    }
    BillCancelled(CONFLICT, "bill_cancelled") {
        title: ("Hóa đơn đã bị hủy", "Bill cancelled"),
        detail: ("Hóa đơn này đã bị hủy.", "This bill was cancelled."),
    }
    BillNotUnpaid(CONFLICT, "bill_not_unpaid") {
        title: ("Hóa đơn không còn chờ thanh toán", "Bill not unpaid"),
        detail: (
            "Chỉ hủy được hóa đơn chưa thanh toán.",
            "Only an unpaid bill can be cancelled.",
        ),
    }
    ShiftAlreadyOpen(CONFLICT, "shift_already_open") {
        title: ("Ca làm việc đang mở", "Shift already open"),
        detail: (
            "Bạn đang có một ca làm việc chưa đóng; hãy đóng ca đó trước khi mở ca mới.",
            "You have a shift still open; close it before opening another.",
        ),
    }
    NoOpenShift(CONFLICT, "no_open_shift") {
        title: ("Chưa mở ca làm việc", "No open shift"),
        detail: (
            "Cần mở ca làm việc (với tiền đầu ca) trước khi thu tiền.",
            "Open a shift (with its float) before collecting.",
        ),
    }
    ShiftClosed(CONFLICT, "shift_closed") {
        title: ("Ca làm việc đã đóng", "Shift closed"),
        detail: (
            "Ca làm việc này đã đóng; một ca đã đóng không thay đổi được nữa.",
            "This shift is closed; a closed shift never changes.",
        ),
    }
    NoRefundOwed(CONFLICT, "no_refund_owed") {
        title: ("Không có khoản hoàn tiền mặt", "No cash refund owed"),
        detail: (
            "Hóa đơn này không có khoản tiền mặt nào phải hoàn: chỉ hoàn tại quầy phí đã nộp tiền mặt của hồ sơ bị từ chối, rút hoặc không được giải quyết, và chỉ một lần.",
            "This bill owes no cash refund: only a fee paid in cash for a dossier refused, withdrawn or rejected is paid back at a counter, once.",
        ),
    }
    RemittanceExceedsCash(CONFLICT, "remittance_exceeds_cash") {
        title: ("Số tiền nộp vượt quá tiền mặt", "Deposit exceeds the cash"),
        detail: (
            "Số tiền nộp Kho bạc vượt quá số tiền mặt còn lại của ngày từ các ca đã đóng.",
            "The deposit exceeds the day's cash from closed shifts not yet deposited.",
        ),
    }
    Internal(INTERNAL_SERVER_ERROR, "internal") {
        title: ("Lỗi hệ thống", "Internal error"),
        detail: (
            "Đã có lỗi phía hệ thống; hãy thử lại sau và báo mã yêu cầu nếu lỗi lặp lại.",
            "Something went wrong on our side; try again later and quote the request id if it persists.",
        ),
    }
    ServiceUnavailable(SERVICE_UNAVAILABLE, "service_unavailable") {
        title: ("Dịch vụ tạm thời không sẵn sàng", "Service unavailable"),
        detail: (
            "Dịch vụ tạm thời không sẵn sàng; hãy thử lại sau.",
            "The service is temporarily unavailable; try again later.",
        ),
    }
}

impl ErrorCode {
    /// The code for an error response the framework made without us (an unknown route, a
    /// wrong method, a timeout): every such answer still leaves as problem+json.
    pub fn for_status(status: StatusCode) -> ErrorCode {
        use ErrorCode::*;
        match status {
            StatusCode::UNAUTHORIZED => Unauthenticated,
            StatusCode::FORBIDDEN => Forbidden,
            StatusCode::NOT_FOUND => NotFound,
            StatusCode::METHOD_NOT_ALLOWED => MethodNotAllowed,
            StatusCode::CONFLICT => AlreadyExists,
            StatusCode::PAYLOAD_TOO_LARGE => BodyTooLarge,
            StatusCode::UNPROCESSABLE_ENTITY => ValidationFailed,
            StatusCode::TOO_MANY_REQUESTS => RateLimited,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => UnsupportedMediaType,
            StatusCode::SERVICE_UNAVAILABLE => ServiceUnavailable,
            s if s.is_client_error() => MalformedBody,
            _ => Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::ErrorCode;

    #[test]
    fn every_code_is_snake_case_once_with_an_error_status() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} is in the table twice");
            assert!(
                text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text}"
            );
            let status = code.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{text}"
            );
        }
    }
}
