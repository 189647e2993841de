//! The message catalogue: every title and detail a client can read, in Vietnamese (the
//! default) and English. Errors carry a [`Message`] value, not text, and are rendered in the
//! caller's language at the edge, so one error can be read in either language.

use axum::http::HeaderMap;

use super::error::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// The supported language the caller prefers most, by `Accept-Language` q-values;
    /// Vietnamese when the header is absent or names nothing we speak.
    pub fn negotiate(headers: &HeaderMap) -> Lang {
        let Some(header) = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::default();
        };
        let mut best: Option<(Lang, f32)> = None;
        for item in header.split(',') {
            let mut parts = item.trim().split(';');
            let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = range.split('-').next().unwrap_or("");
            let lang = match primary {
                "vi" => Lang::Vi,
                "en" => Lang::En,
                _ => continue,
            };
            if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
                best = Some((lang, quality));
            }
        }
        best.map(|(lang, _)| lang).unwrap_or_default()
    }
}

/// Something we tell a client in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The default detail of an error code, when nothing more specific is known.
    DefaultDetail(ErrorCode),
    BodyNotJson,
    ContentTypeNotJson,
    InvalidFields,
    RouteNotFound,
    UnitNotFound {
        code: String,
    },
    DatabaseUnavailable,
    /// A value the database refused as data (SQLSTATE class 22), whichever field it came from.
    DataRefused,
    // Field-level messages, used in `errors: [{field, message}]`.
    FieldRequired,
    FieldWrongType,
    FieldInvalidValue,
    FieldOutOfRange {
        min: i64,
        max: i64,
    },
    /// A date, month, year or instant outside the years clients may name.
    YearOutOfRange {
        min: i32,
        max: i32,
    },
    /// Text holding U+0000, which PostgreSQL cannot store.
    NulCharacter,
    CursorInvalid,
    ReferencedObjectMissing,
    ValueAlreadyUsed,
    OtpInvalid,
    /// Every refused password reset, alike: the code, or a verified wallet's national ID.
    ResetProofInvalid,
    PhoneTaken,
    PasswordLength {
        min: usize,
        max: usize,
    },
    TextLength {
        min: usize,
        max: usize,
    },
    RoleNotStaff,
    UnitRequiredForRole,
    AmountNotPayable,
    NationalIdMalformed,
    PinMalformed,
    RecipientUnknown,
    RecipientIsYou,
    OldPinRequired,
    MissingDocuments {
        codes: String,
    },
    UnitNotOfProcedureLevel,
    AppointmentNotAfterDue,
    /// A document URI outside our document storage.
    DocumentNotInStorage {
        prefix: String,
    },
    /// Public tracking found nothing: the same for an unknown code and a wrong or missing key.
    DossierNotTracked,
    /// A refused claim of a counter dossier, alike whichever of its proofs was wrong: the code
    /// texted at the counter, or the applicant's national ID number.
    ClaimProofInvalid,
    AccountHolderNotOwner,
    /// The request names a payment provider this server does not run (or not for this).
    ProviderNotEnabled,
    /// A period whose first day (`from`) is after its last (`to`).
    PeriodReversed,
    /// A procedure's processing time given in both units, or in neither.
    ProcessingTimeInOneUnit,
    /// Two required documents of a procedure with the same code.
    DocumentCodesRepeated,
    /// A merchant key other than the newest tried to rotate keys or revoke the others.
    ApiKeyNotNewest,
}

impl Message {
    pub fn text(&self, lang: Lang) -> String {
        use Message::*;
        let (vi, en): (String, String) = match self {
            DefaultDetail(code) => {
                let (vi, en) = default_detail(*code);
                (vi.into(), en.into())
            }
            BodyNotJson => (
                "Nội dung yêu cầu không phải JSON hợp lệ.".into(),
                "The request body is not valid JSON.".into(),
            ),
            ContentTypeNotJson => (
                "Yêu cầu phải có Content-Type: application/json.".into(),
                "The request must have Content-Type: application/json.".into(),
            ),
            InvalidFields => (
                "Một số trường không hợp lệ; xem danh sách errors.".into(),
                "Some fields are invalid; see the errors list.".into(),
            ),
            RouteNotFound => (
                "Không có địa chỉ API này.".into(),
                "There is no such API path.".into(),
            ),
            UnitNotFound { code } => (
                format!("Không tìm thấy đơn vị hành chính có mã {code}."),
                format!("No administrative unit has the code {code}."),
            ),
            DatabaseUnavailable => (
                "Cơ sở dữ liệu tạm thời không truy cập được.".into(),
                "The database cannot be reached right now.".into(),
            ),
            DataRefused => (
                "Một giá trị trong yêu cầu không hợp lệ với kiểu dữ liệu hoặc phạm vi của nó.".into(),
                "A value in the request is not valid for its type or range.".into(),
            ),
            FieldRequired => (
                "Trường này là bắt buộc.".into(),
                "This field is required.".into(),
            ),
            FieldWrongType => (
                "Trường này có kiểu dữ liệu không đúng.".into(),
                "This field has the wrong type.".into(),
            ),
            FieldInvalidValue => (
                "Giá trị không hợp lệ.".into(),
                "The value is not valid.".into(),
            ),
            FieldOutOfRange { min, max } => (
                format!("Giá trị phải nằm trong khoảng {min}–{max}."),
                format!("The value must be between {min} and {max}."),
            ),
            YearOutOfRange { min, max } => (
                format!("Năm phải nằm trong khoảng {min}–{max}."),
                format!("The year must be between {min} and {max}."),
            ),
            NulCharacter => (
                "Không được chứa ký tự NUL (U+0000).".into(),
                "Must not contain the NUL character (U+0000).".into(),
            ),
            CursorInvalid => (
                "Con trỏ phân trang không hợp lệ; hãy dùng next_cursor của trang trước.".into(),
                "The cursor is not valid; use the previous page's next_cursor.".into(),
            ),
            ReferencedObjectMissing => (
                "Đối tượng được tham chiếu không tồn tại.".into(),
                "The referenced object does not exist.".into(),
            ),
            ValueAlreadyUsed => (
                "Giá trị này đã được sử dụng.".into(),
                "This value is already in use.".into(),
            ),
            OtpInvalid => (
                "Mã xác thực sai, đã hết hạn hoặc đã được dùng; hãy yêu cầu mã mới.".into(),
                "The code is wrong, expired or already used; request a new one.".into(),
            ),
            ResetProofInvalid => (
                "Mã xác thực sai, đã hết hạn hoặc đã được dùng; nếu ví của bạn đã xác thực danh tính, hãy nhập cả số định danh cá nhân (national_id) đã dùng để xác thực.".into(),
                "The code is wrong, expired or already used; if your wallet is identity-verified, also give the national ID number (national_id) it was verified with.".into(),
            ),
            PhoneTaken => (
                "Số điện thoại này đã có tài khoản.".into(),
                "This phone number already has an account.".into(),
            ),
            PasswordLength { min, max } => (
                format!("Mật khẩu phải dài từ {min} đến {max} ký tự."),
                format!("The password must be {min} to {max} characters long."),
            ),
            TextLength { min, max } => (
                format!("Độ dài phải từ {min} đến {max} ký tự."),
                format!("The length must be {min} to {max} characters."),
            ),
            RoleNotStaff => (
                "Vai trò phải là officer, supervisor hoặc admin.".into(),
                "The role must be officer, supervisor or admin.".into(),
            ),
            UnitRequiredForRole => (
                "Cán bộ (officer, supervisor) phải gắn với một đơn vị.".into(),
                "Officers and supervisors must be bound to a unit.".into(),
            ),
            AmountNotPayable => (
                format!("Số tiền phải là số nguyên đồng từ 1 đến {}.", crate::domain::money::MAX_AMOUNT),
                format!("The amount must be a whole number of đồng from 1 to {}.", crate::domain::money::MAX_AMOUNT),
            ),
            NationalIdMalformed => (
                "Số định danh cá nhân gồm 12 chữ số: mã tỉnh, mã thế kỷ và giới tính, năm sinh, 6 số ngẫu nhiên.".into(),
                "A national ID number has 12 digits: province code, century and sex, birth year, 6 random digits.".into(),
            ),
            PinMalformed => ("Mã PIN gồm đúng 6 chữ số.".into(), "A PIN is exactly 6 digits.".into()),
            RecipientUnknown => (
                "Không có ví đã xác thực nào gắn với số điện thoại này.".into(),
                "No verified wallet has this phone number.".into(),
            ),
            RecipientIsYou => ("Không thể chuyển tiền cho chính mình.".into(), "You cannot transfer to yourself.".into()),
            OldPinRequired => (
                "Để đổi mã PIN, hãy nhập mã PIN hiện tại (old_pin).".into(),
                "To change the PIN, give the current one (old_pin).".into(),
            ),
            MissingDocuments { codes } => (
                format!("Thiếu giấy tờ bắt buộc: {codes}."),
                format!("Mandatory documents are missing: {codes}."),
            ),
            UnitNotOfProcedureLevel => (
                "Đơn vị không thuộc cấp giải quyết thủ tục này.".into(),
                "This unit is not of the level that handles the procedure.".into(),
            ),
            ProviderNotEnabled => (
                "Nhà cung cấp thanh toán này không được bật trên máy chủ này.".into(),
                "This payment provider is not enabled on this server.".into(),
            ),
            PeriodReversed => (
                "Ngày bắt đầu (from) không được sau ngày kết thúc (to).".into(),
                "The first day (from) must not be after the last (to).".into(),
            ),
            DocumentCodesRepeated => (
                "Mỗi giấy tờ yêu cầu phải có một mã riêng.".into(),
                "Each required document needs a code of its own.".into(),
            ),
            ProcessingTimeInOneUnit => (
                "Thời hạn giải quyết phải ghi bằng đúng một đơn vị: working_days hoặc working_hours.".into(),
                "Give the processing time in exactly one unit: working_days or working_hours.".into(),
            ),
            AccountHolderNotOwner => (
                "Chỉ được rút về tài khoản ngân hàng đứng tên chủ ví.".into(),
                "Withdrawals go only to a bank account in the wallet holder's own name.".into(),
            ),
            AppointmentNotAfterDue => (
                "Ngày hẹn mới phải sau hạn giải quyết hiện tại.".into(),
                "The new appointment must be after the current due time.".into(),
            ),
            DocumentNotInStorage { prefix } => (
                format!("Tài liệu phải được lưu trong kho tài liệu của hệ thống: địa chỉ bắt đầu bằng {prefix}, tiếp theo là tên tệp (chữ, số, -, _, . và /)."),
                format!("Documents must be kept in the system's document storage: a URI starting with {prefix}, followed by the object key (letters, digits, -, _, . and /)."),
            ),
            DossierNotTracked => (
                "Không tìm thấy hồ sơ có mã hồ sơ và mã tra cứu này.".into(),
                "No dossier has this code and tracking key.".into(),
            ),
            ClaimProofInvalid => (
                "Mã nhận hồ sơ hoặc số định danh cá nhân không đúng, hoặc mã đã được dùng hay đã bị khóa sau 5 lần nhập sai.".into(),
                "The claim code or the national ID number is wrong, or the code was already used or locked after 5 wrong tries.".into(),
            ),
            ApiKeyNotNewest => (
                "Chỉ khóa API mới nhất của cửa hàng mới được đổi khóa hoặc thu hồi các khóa khác; khóa này là khóa cũ (vẫn dùng được đến khi hết hạn). Hãy dùng khóa mới nhất, hoặc nhờ quản trị viên cấp lại khóa.".into(),
                "Only the merchant's newest API key may rotate keys or revoke the others; this is an older key (it works only until it expires). Use the newest key, or ask an administrator to reset the keys.".into(),
            ),
        };
        match lang {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
}

/// The problem `title`: short, the same for every occurrence of a code.
pub fn title(code: ErrorCode, lang: Lang) -> &'static str {
    use ErrorCode::*;
    let (vi, en) = match code {
        MalformedBody => ("Nội dung yêu cầu sai định dạng", "Malformed request body"),
        UnsupportedMediaType => ("Kiểu nội dung không được hỗ trợ", "Unsupported media type"),
        Unauthenticated => ("Chưa xác thực", "Not authenticated"),
        Forbidden => ("Không có quyền", "Forbidden"),
        NotFound => ("Không tìm thấy", "Not found"),
        MethodNotAllowed => ("Phương thức không được phép", "Method not allowed"),
        AlreadyExists => ("Đã tồn tại", "Already exists"),
        PhoneTaken => ("Số điện thoại đã được đăng ký", "Phone already registered"),
        OtpInvalid => ("Mã xác thực không hợp lệ", "Invalid one-time code"),
        BodyTooLarge => ("Nội dung quá lớn", "Request body too large"),
        ValidationFailed => ("Dữ liệu không hợp lệ", "Validation failed"),
        RateLimited => ("Quá nhiều yêu cầu", "Too many requests"),
        OrderRefConflict => ("Trùng mã đơn của cửa hàng", "order_ref already used"),
        AlreadyPaid => ("Đơn đã được thanh toán", "Already paid"),
        OrderCancelled => ("Đơn đã bị hủy", "Order cancelled"),
        OrderExpired => ("Đơn đã hết hạn", "Order expired"),
        OrderNotPaid => ("Đơn chưa được thanh toán", "Order not paid"),
        InsufficientMerchantBalance => ("Số dư cửa hàng không đủ", "Insufficient merchant balance"),
        RefundExceedsRefundable => ("Vượt số tiền có thể hoàn", "Refund too large"),
        CallbackUrlNotSet => ("Chưa có địa chỉ nhận callback", "No callback URL"),
        InvalidTransition => (
            "Trạng thái hồ sơ không cho phép thao tác này",
            "Action not allowed in this status",
        ),
        FeeUnpaid => ("Phí, lệ phí chưa được thanh toán", "Fee unpaid"),

        IdempotencyKeyRequired => ("Thiếu khóa Idempotency-Key", "Idempotency-Key required"),
        PaymentPinRequired => ("Thiếu mã PIN thanh toán", "Payment PIN required"),
        IdempotencyInProgress => ("Yêu cầu đang được xử lý", "Request in progress"),
        InsufficientFunds => ("Không đủ số dư", "Insufficient funds"),
        LimitExceeded => ("Vượt hạn mức", "Limit exceeded"),
        NationalIdTaken => ("Số định danh đã được dùng", "National ID already used"),
        WalletNotVerified => ("Ví chưa xác thực", "Wallet not verified"),
        PaymentPinNotSet => ("Chưa đặt mã PIN", "Payment PIN not set"),
        IdempotencyKeyReused => (
            "Khóa Idempotency-Key đã dùng cho yêu cầu khác",
            "Idempotency key reused",
        ),
        PaymentPinInvalid => ("Sai mã PIN", "Wrong payment PIN"),
        PaymentPinLocked => ("Tạm khóa thanh toán", "Payments locked"),

        Internal => ("Lỗi hệ thống", "Internal error"),
        ServiceUnavailable => ("Dịch vụ tạm thời không sẵn sàng", "Service unavailable"),
    };
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
}

fn default_detail(code: ErrorCode) -> (&'static str, &'static str) {
    use ErrorCode::*;
    match code {
        MalformedBody => (
            "Không đọc được nội dung yêu cầu.",
            "The request body could not be read.",
        ),
        UnsupportedMediaType => (
            "Kiểu nội dung của yêu cầu không được hỗ trợ.",
            "The request's content type is not supported.",
        ),
        Unauthenticated => (
            "Thiếu thông tin xác thực, hoặc thông tin đã hết hạn hay không hợp lệ.",
            "Credentials are missing, expired or invalid.",
        ),
        Forbidden => (
            "Vai trò của bạn không được thực hiện thao tác này.",
            "Your role may not perform this action.",
        ),
        NotFound => (
            "Không tìm thấy đối tượng yêu cầu.",
            "The requested object was not found.",
        ),
        MethodNotAllowed => (
            "Địa chỉ này không hỗ trợ phương thức HTTP đã dùng.",
            "This path does not support the HTTP method used.",
        ),
        AlreadyExists => (
            "Một đối tượng có cùng giá trị định danh đã tồn tại.",
            "An object with the same identifying value already exists.",
        ),
        PhoneTaken => (
            "Số điện thoại này đã có tài khoản.",
            "This phone number already has an account.",
        ),
        OtpInvalid => (
            "Mã xác thực sai, đã hết hạn hoặc đã được dùng.",
            "The one-time code is wrong, expired or already used.",
        ),
        BodyTooLarge => (
            "Nội dung yêu cầu quá lớn.",
            "The request body is too large.",
        ),
        ValidationFailed => (
            "Dữ liệu gửi lên không hợp lệ.",
            "The submitted data is not valid.",
        ),
        RateLimited => (
            "Bạn đã gửi quá nhiều yêu cầu; hãy thử lại sau.",
            "Too many requests; try again later.",
        ),
        IdempotencyKeyRequired => (
            "Yêu cầu chuyển tiền phải có header Idempotency-Key (1–255 ký tự).",
            "Money-moving requests need an Idempotency-Key header (1-255 characters).",
        ),
        PaymentPinRequired => (
            "Yêu cầu thanh toán phải có header X-Payment-Pin.",
            "Payments need the X-Payment-Pin header.",
        ),
        IdempotencyInProgress => (
            "Một yêu cầu với cùng Idempotency-Key đang được xử lý; hãy thử lại sau giây lát.",
            "A request with the same Idempotency-Key is still being processed; retry shortly.",
        ),
        InsufficientFunds => (
            "Số dư ví không đủ cho giao dịch này.",
            "The wallet balance does not cover this payment.",
        ),
        LimitExceeded => (
            "Giao dịch vượt hạn mức tháng của ví.",
            "The payment exceeds the wallet's monthly limit.",
        ),
        NationalIdTaken => (
            "Số định danh này đã xác thực cho một ví khác.",
            "This national ID number already verifies another wallet.",
        ),
        WalletNotVerified => (
            "Ví phải được xác thực danh tính trước khi giữ tiền.",
            "The wallet must be identity-verified before it holds money.",
        ),
        PaymentPinNotSet => (
            "Hãy đặt mã PIN thanh toán trước.",
            "Set a payment PIN first.",
        ),
        IdempotencyKeyReused => (
            "Khóa này đã được dùng cho một yêu cầu có nội dung khác.",
            "This key was already used for a different request.",
        ),
        PaymentPinInvalid => ("Mã PIN thanh toán không đúng.", "The payment PIN is wrong."),
        PaymentPinLocked => (
            "Nhập sai mã PIN quá nhiều lần; thanh toán tạm khóa 15 phút.",
            "Too many wrong PINs; wallet payments are locked for 15 minutes.",
        ),
        OrderRefConflict => (
            "Mã đơn (order_ref) này đã dùng cho một đơn có nội dung khác.",
            "This order_ref already names an order with other details.",
        ),
        AlreadyPaid => (
            "Đơn hàng này đã được thanh toán.",
            "This order is already paid.",
        ),
        OrderCancelled => ("Đơn hàng này đã bị hủy.", "This order was cancelled."),
        OrderExpired => (
            "Đơn hàng này đã hết hạn thanh toán.",
            "This order has expired.",
        ),
        OrderNotPaid => (
            "Chỉ hoàn tiền được cho đơn đã thanh toán.",
            "Only a paid order can be refunded.",
        ),
        InsufficientMerchantBalance => (
            "Số dư khả dụng của cửa hàng không đủ để hoàn tiền.",
            "The merchant's available balance does not cover this refund.",
        ),
        RefundExceedsRefundable => (
            "Tổng tiền hoàn vượt quá số tiền đã thanh toán.",
            "Refunds would exceed the amount paid.",
        ),
        CallbackUrlNotSet => (
            "Cửa hàng chưa đặt địa chỉ nhận callback (callback_url) trong hồ sơ.",
            "Set a callback_url in the merchant profile first.",
        ),
        InvalidTransition => (
            "Hồ sơ đang ở trạng thái không cho phép thao tác này; xem current_status và allowed_actions.",
            "The dossier's status does not allow this action; see current_status and allowed_actions.",
        ),
        FeeUnpaid => (
            "Chưa thể trả kết quả khi phí, lệ phí của hồ sơ chưa được thanh toán.",
            "The result cannot be returned while the dossier's fee is unpaid.",
        ),
        Internal => (
            "Đã có lỗi phía hệ thống; hãy thử lại sau và báo mã yêu cầu nếu lỗi lặp lại.",
            "Something went wrong on our side; try again later and quote the request id if it persists.",
        ),
        ServiceUnavailable => (
            "Dịch vụ tạm thời không sẵn sàng; hãy thử lại sau.",
            "The service is temporarily unavailable; try again later.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn negotiate(value: &str) -> Lang {
        let mut headers = HeaderMap::new();
        headers.insert("accept-language", HeaderValue::from_str(value).unwrap());
        Lang::negotiate(&headers)
    }

    #[test]
    fn vietnamese_is_the_default() {
        assert_eq!(Lang::negotiate(&HeaderMap::new()), Lang::Vi);
        assert_eq!(negotiate("fr-FR, de;q=0.5"), Lang::Vi);
    }

    #[test]
    fn the_preferred_supported_language_wins() {
        assert_eq!(negotiate("en-US,en;q=0.9"), Lang::En);
        assert_eq!(negotiate("fr, en;q=0.8, vi;q=0.9"), Lang::Vi);
        assert_eq!(negotiate("vi;q=0.2, EN;q=0.7"), Lang::En);
        assert_eq!(negotiate("en;q=0, vi;q=0.1"), Lang::Vi);
    }
}
