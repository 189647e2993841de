//! The message catalogue: every detail a client can read, in Vietnamese (the default) and
//! English; each error code's title and default detail are its row of the error-code table
//! (`error_codes.rs`). Errors carry a [`Message`] value, not text, and are rendered in the
//! caller's language at the edge, so one error can be read in either language.

use super::error_codes::ErrorCode;
pub use super::lang::Lang;

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
    BillAlreadyPaid,
    /// A bill code that names no bill: looked up or paid by code.
    BillNotFound,
    /// A billing account naming a customer code the biller has sent bills for, but not this one.
    CustomerCodeUnknown,
    /// A bill's `amount` that is not the total of its items.
    BillAmountNotItemsTotal,
    /// A batch row that repeats the reference of an earlier row of the same batch.
    ReferenceRepeatedInBatch,
    /// A billing account naming no biller a citizen may link (unknown, disabled, or a unit's
    /// dossier fees, which reach their applicant without a link).
    BillerUnknown,
    /// A citizen who already has as many billing accounts as one may.
    BillingAccountsFull {
        max: i64,
    },
    /// `request_payment` on a dossier that owes nothing: a free procedure, or a fee paid.
    NoFeeOwed,
    /// A list with too few or too many entries (a bill's items, a batch's bills).
    ListLength {
        min: usize,
        max: usize,
    },
    /// A batch row whose reference already names another bill of the biller's.
    BillReferenceTaken,
    ShiftNotFound,
    CollectionNotFound,
    VoidRequestNotFound,
    /// A void asked of something other than a completed cash collection.
    CollectionNotVoidable,
    /// A void request approved already.
    VoidAlreadyApproved,
    VoidAlreadyRequested,
    /// A bill of a biller for which the officer's unit is no collection point.
    NotCollectionPoint,
    /// A closing count that differs from the expected cash, without a reason.
    DifferenceReasonRequired,
    /// Only the officer who asked may not approve: four eyes.
    OwnVoidRequest,
    CollectionPointExists,
    CollectionPointNotFound,
    /// A remittance for a staff member without a unit, who must name one.
    UnitRequired,
}

impl Message {
    pub fn text(&self, lang: Lang) -> String {
        use Message::*;
        let (vi, en): (String, String) = match self {
            DefaultDetail(code) => (
                code.default_detail(Lang::Vi).into(),
                code.default_detail(Lang::En).into(),
            ),
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
            BillAlreadyPaid => (
                "Hóa đơn này đã được thanh toán.".into(),
                "This bill is already paid.".into(),
            ),
            BillNotFound => (
                "Không tìm thấy hóa đơn có mã này.".into(),
                "No bill has this code.".into(),
            ),
            CustomerCodeUnknown => (
                "Đơn vị thu không có mã khách hàng này.".into(),
                "The biller does not know this customer code.".into(),
            ),
            BillAmountNotItemsTotal => (
                "Số tiền (amount) phải bằng tổng số tiền các khoản (items).".into(),
                "The amount must equal the total of the items.".into(),
            ),
            ReferenceRepeatedInBatch => (
                "Mã tham chiếu này đã có ở một dòng trước trong cùng lô.".into(),
                "An earlier row of the same batch has this reference.".into(),
            ),
            BillerUnknown => (
                "Không có đơn vị thu nào có mã này để liên kết.".into(),
                "No biller you can link has this code.".into(),
            ),
            BillingAccountsFull { max } => (
                format!("Bạn đã có {max} mã khách hàng liên kết, là số tối đa; hãy bỏ bớt một mã trước."),
                format!("You already have {max} linked customer codes, the most allowed; unlink one first."),
            ),
            NoFeeOwed => (
                "Hồ sơ không còn phí, lệ phí phải thanh toán: thủ tục không thu phí, hoặc phí đã được thanh toán.".into(),
                "The dossier owes no fee: the procedure is free, or its fee is paid already.".into(),
            ),
            ListLength { min, max } => (
                format!("Danh sách phải có từ {min} đến {max} phần tử."),
                format!("The list must have {min} to {max} entries."),
            ),
            BillReferenceTaken => (
                "Mã tham chiếu này đã dùng cho một hóa đơn khác với nội dung khác.".into(),
                "This reference already names a bill with other content.".into(),
            ),
            ShiftNotFound => (
                "Không tìm thấy ca làm việc này.".into(),
                "No such shift.".into(),
            ),
            CollectionNotFound => (
                "Không tìm thấy khoản thu này.".into(),
                "No such collection.".into(),
            ),
            VoidRequestNotFound => (
                "Không tìm thấy yêu cầu hủy khoản thu này.".into(),
                "No such void request.".into(),
            ),
            CollectionNotVoidable => (
                "Chỉ hủy được khoản thu tiền mặt đã hoàn tất và chưa bị hủy.".into(),
                "Only a completed cash collection not voided yet can be voided.".into(),
            ),
            VoidAlreadyApproved => (
                "Yêu cầu hủy này đã được phê duyệt.".into(),
                "This void request is already approved.".into(),
            ),
            VoidAlreadyRequested => (
                "Khoản thu này đã có yêu cầu hủy.".into(),
                "This collection already has a void request.".into(),
            ),
            NotCollectionPoint => (
                "Đơn vị của bạn không phải điểm thu hộ của đơn vị thu này; chỉ thu được phí, lệ phí của đơn vị mình và hóa đơn của các đơn vị thu đã đăng ký thu hộ tại đây.".into(),
                "Your unit is not a collection point of this biller; you collect your unit's dossier fees and the bills of billers that made it a collection point.".into(),
            ),
            DifferenceReasonRequired => (
                "Số tiền kiểm đếm khác số tiền phải có; hãy ghi lý do chênh lệch.".into(),
                "The count differs from the expected cash; give the reason for the difference.".into(),
            ),
            OwnVoidRequest => (
                "Người đề nghị hủy không được tự phê duyệt yêu cầu của mình.".into(),
                "Whoever asked for a void may not approve it.".into(),
            ),
            CollectionPointExists => (
                "Đơn vị này đã là điểm thu hộ của đơn vị thu.".into(),
                "This unit is already a collection point of the biller.".into(),
            ),
            CollectionPointNotFound => (
                "Đơn vị này không phải điểm thu hộ của đơn vị thu.".into(),
                "This unit is not a collection point of the biller.".into(),
            ),
            UnitRequired => (
                "Hãy cho biết mã đơn vị (unit_code).".into(),
                "Name the unit (unit_code).".into(),
            ),
        };
        match lang {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
}
