// Package prompts is the catalogue of everything the line says: one ID per
// prompt, its text in each language, and its Asterisk media URI. Audio files
// made from the text by gen.sh live under sounds/<lang>/ivr-pin/ and are
// installed into Asterisk's sounds directory, so `sound:ivr-pin/<id>` plays in
// the channel's language. Numbers are said with the project's own number
// prompts (number-0 to number-12, in every language), not Asterisk's
// `digits:` media: Asterisk ships digits in English only unless someone
// installs another language's pack, and an Arabic caller must not hear
// English numbers.
package prompts

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ID names a prompt.
type ID string

// Every prompt the call flow can play.
const (
	Welcome           ID = "welcome"
	LanguageChoice    ID = "lang-choice" // "For English, press" (followed by the number)
	MenuChange        ID = "menu-change"
	MenuSetup         ID = "menu-setup"
	MenuAgent         ID = "menu-agent"
	MenuRepeat        ID = "menu-repeat"
	EnterCard         ID = "enter-card"
	CardEnding        ID = "card-ending" // followed by the last four digits
	EnterExpiry       ID = "enter-expiry"
	EnterCurrentPIN   ID = "enter-current-pin"
	EnterNewPIN       ID = "enter-new-pin"
	PINRuleFrom       ID = "pin-rule-from"   // "Your new PIN must have" N [to M]
	PINRuleTo         ID = "pin-rule-to"     // "to"
	PINRuleDigits     ID = "pin-rule-digits" // "digits, with no repeated or sequential digits."
	ConfirmNewPIN     ID = "confirm-new-pin"
	NoInput           ID = "no-input"
	InvalidChoice     ID = "invalid-choice"
	EntryCleared      ID = "entry-cleared"
	ReasonIncomplete  ID = "reason-incomplete"
	ReasonTooLong     ID = "reason-too-long"
	ReasonNotValid    ID = "reason-not-valid"
	ReasonBadDate     ID = "reason-bad-date"
	ReasonExpired     ID = "reason-expired"
	ReasonPINLength   ID = "reason-pin-length"
	ReasonPINWeak     ID = "reason-pin-weak"
	ReasonPINSame     ID = "reason-pin-same"
	ReasonPINMismatch ID = "reason-pin-mismatch"
	ReasonWrongPIN    ID = "reason-wrong-current"
	TryAgain          ID = "try-again"
	PleaseWait        ID = "please-wait"
	StillWorking      ID = "still-working"
	ResultChanged     ID = "result-changed"
	ResultSet         ID = "result-set"
	ResultWrongPIN    ID = "result-wrong-pin"
	ResultNotEligible ID = "result-not-eligible"
	ResultWeakPIN     ID = "result-weak-pin"
	ResultRejected    ID = "result-rejected"
	ResultUnavailable ID = "result-unavailable"
	ResultAmbiguous   ID = "result-ambiguous"
	NoPINYetOffer     ID = "no-pin-yet-offer"
	TooManyTries      ID = "too-many-tries"
	TransferAgent     ID = "transfer-agent"
	NoAgent           ID = "no-agent"
	ReturningToAgent  ID = "returning-to-agent"
	Goodbye           ID = "goodbye"
	ServiceClosing    ID = "service-closing"
	LimitReached      ID = "limit-reached"

	EnterSecurityCode     ID = "enter-security-code"
	ReasonDetailsMismatch ID = "reason-details-mismatch"
	ResultCannotVerify    ID = "result-cannot-verify"
	ResultAlreadySet      ID = "result-already-set"
	ReasonExpiryMismatch  ID = "reason-expiry-mismatch"
	ResultUnknownCard     ID = "result-unknown-card"
)

// Languages the catalogue has text for. The first configured language is the
// line's default.
var Languages = []string{"en", "ar", "zh"}

// Text holds each prompt's words per language.
var Text = map[string]map[ID]string{
	"en": {
		Welcome:               "Welcome to the card PIN service.",
		LanguageChoice:        "For English, press",
		MenuChange:            "To change your PIN, press 1.",
		MenuSetup:             "To set the PIN of a new card, press 2.",
		MenuAgent:             "To speak to an agent, press 0.",
		MenuRepeat:            "To hear these options again, press 9.",
		EnterCard:             "Please enter your card number, then press the hash key.",
		CardEnding:            "For the card ending in",
		EnterExpiry:           "Please enter the card's expiry date: two digits for the year, then two digits for the month.",
		EnterCurrentPIN:       "Please enter your current PIN, then press the hash key.",
		EnterNewPIN:           "Please enter your new PIN, then press the hash key.",
		PINRuleFrom:           "Your new PIN must have",
		PINRuleTo:             "to",
		PINRuleDigits:         "digits, with no repeated or sequential digits.",
		ConfirmNewPIN:         "Please enter your new PIN again, then press the hash key.",
		NoInput:               "Sorry, I did not hear anything.",
		InvalidChoice:         "Sorry, that is not one of the options.",
		EntryCleared:          "Entry cleared.",
		ReasonIncomplete:      "That number was not complete.",
		ReasonTooLong:         "That number was too long.",
		ReasonNotValid:        "That is not a valid card number.",
		ReasonBadDate:         "That is not a valid date.",
		ReasonExpired:         "That card has expired.",
		ReasonPINLength:       "That PIN does not have the right number of digits.",
		ReasonPINWeak:         "That PIN is too easy to guess.",
		ReasonPINSame:         "Your new PIN must be different from your current PIN.",
		ReasonPINMismatch:     "The two PINs did not match.",
		ReasonWrongPIN:        "Your current PIN was not accepted.",
		TryAgain:              "Please try again.",
		PleaseWait:            "Please wait while I contact your bank.",
		StillWorking:          "Still working on it. Please stay on the line.",
		ResultChanged:         "Your PIN has been changed. Use your new PIN from now on.",
		ResultSet:             "Your new card's PIN has been set.",
		ResultWrongPIN:        "Your current PIN was not accepted, so your PIN has not been changed.",
		ResultNotEligible:     "This card cannot use this service. Your PIN has not been changed. Please contact your bank.",
		ResultWeakPIN:         "The bank did not accept that PIN. Your PIN has not been changed.",
		ResultRejected:        "Sorry, the bank could not change your PIN. Please contact your bank.",
		ResultUnavailable:     "Sorry, the service is not available right now. Your PIN has not been changed. Please try again later.",
		ResultAmbiguous:       "Sorry, we could not confirm whether your PIN was changed. Please do not try again now. Try your new PIN later, or contact your bank.",
		NoPINYetOffer:         "This card does not have a PIN yet. To set its first PIN now, press 1.",
		TooManyTries:          "Sorry, that did not work after several tries.",
		TransferAgent:         "Please hold while I transfer you to an agent.",
		NoAgent:               "Sorry, no agent can be reached from this line.",
		ReturningToAgent:      "Returning you to the agent now.",
		Goodbye:               "Thank you for calling. Goodbye.",
		ServiceClosing:        "Sorry, this service is closing for maintenance. Please call again in a few minutes.",
		LimitReached:          "For your security, this service is not available for this card or phone right now. Please try again later.",
		EnterSecurityCode:     "Please enter the three digit security code from the back of your card.",
		ReasonDetailsMismatch: "The card details you entered do not match our records.",
		ResultCannotVerify:    "Sorry, the PIN of this card cannot be set on this line. Your PIN has not been set. Please call your bank.",
		ResultAlreadySet:      "The first PIN of this card has already been set. Your PIN has not been changed. To reset your PIN, please speak to an agent at your bank.",
		ReasonExpiryMismatch:  "The expiry date you entered does not match this card.",
		ResultUnknownCard:     "Your bank does not know this card number. Your PIN has not been changed. Please check the number on your card.",
	},
	"ar": {
		Welcome:               "مرحبا بكم في خدمة الرقم السري للبطاقة.",
		LanguageChoice:        "للعربية، اضغط",
		MenuChange:            "لتغيير الرقم السري، اضغط 1.",
		MenuSetup:             "لتعيين الرقم السري لبطاقة جديدة، اضغط 2.",
		MenuAgent:             "للتحدث إلى موظف، اضغط 0.",
		MenuRepeat:            "لسماع الخيارات مرة أخرى، اضغط 9.",
		EnterCard:             "من فضلك أدخل رقم البطاقة، ثم اضغط مفتاح المربع.",
		CardEnding:            "للبطاقة المنتهية بالأرقام",
		EnterExpiry:           "من فضلك أدخل تاريخ انتهاء البطاقة: رقمين للسنة، ثم رقمين للشهر.",
		EnterCurrentPIN:       "من فضلك أدخل الرقم السري الحالي، ثم اضغط مفتاح المربع.",
		EnterNewPIN:           "من فضلك أدخل الرقم السري الجديد، ثم اضغط مفتاح المربع.",
		PINRuleFrom:           "يجب أن يتكون الرقم السري الجديد من",
		PINRuleTo:             "إلى",
		PINRuleDigits:         "أرقام، دون أرقام مكررة أو متتالية.",
		ConfirmNewPIN:         "من فضلك أدخل الرقم السري الجديد مرة أخرى، ثم اضغط مفتاح المربع.",
		NoInput:               "عذرا، لم أسمع شيئا.",
		InvalidChoice:         "عذرا، هذا ليس من الخيارات.",
		EntryCleared:          "تم مسح الإدخال.",
		ReasonIncomplete:      "الرقم غير مكتمل.",
		ReasonTooLong:         "الرقم أطول من اللازم.",
		ReasonNotValid:        "هذا ليس رقم بطاقة صحيحا.",
		ReasonBadDate:         "هذا ليس تاريخا صحيحا.",
		ReasonExpired:         "انتهت صلاحية هذه البطاقة.",
		ReasonPINLength:       "عدد أرقام الرقم السري غير صحيح.",
		ReasonPINWeak:         "هذا الرقم السري سهل التخمين.",
		ReasonPINSame:         "يجب أن يختلف الرقم السري الجديد عن الحالي.",
		ReasonPINMismatch:     "الرقمان السريان غير متطابقين.",
		ReasonWrongPIN:        "لم يتم قبول الرقم السري الحالي.",
		TryAgain:              "من فضلك حاول مرة أخرى.",
		PleaseWait:            "من فضلك انتظر بينما أتصل بالبنك.",
		StillWorking:          "ما زلنا نعمل على طلبك. من فضلك ابق على الخط.",
		ResultChanged:         "تم تغيير الرقم السري. استخدم الرقم الجديد من الآن.",
		ResultSet:             "تم تعيين الرقم السري لبطاقتك الجديدة.",
		ResultWrongPIN:        "لم يتم قبول الرقم السري الحالي، لذلك لم يتغير الرقم السري.",
		ResultNotEligible:     "لا يمكن استخدام هذه الخدمة لهذه البطاقة. لم يتغير الرقم السري. من فضلك اتصل بالبنك.",
		ResultWeakPIN:         "لم يقبل البنك هذا الرقم السري. لم يتغير الرقم السري.",
		ResultRejected:        "عذرا، لم يتمكن البنك من تغيير الرقم السري. من فضلك اتصل بالبنك.",
		ResultUnavailable:     "عذرا، الخدمة غير متاحة الآن. لم يتغير الرقم السري. من فضلك حاول لاحقا.",
		ResultAmbiguous:       "عذرا، لم نتمكن من التأكد من تغيير الرقم السري. من فضلك لا تحاول مرة أخرى الآن. جرب الرقم الجديد لاحقا، أو اتصل بالبنك.",
		NoPINYetOffer:         "لا يوجد رقم سري لهذه البطاقة بعد. لتعيين أول رقم سري الآن، اضغط 1.",
		TooManyTries:          "عذرا، لم تنجح العملية بعد عدة محاولات.",
		TransferAgent:         "من فضلك انتظر بينما أحولك إلى موظف.",
		NoAgent:               "عذرا، لا يمكن الوصول إلى موظف من هذا الخط.",
		ReturningToAgent:      "سأعيدك إلى الموظف الآن.",
		Goodbye:               "شكرا لاتصالك. مع السلامة.",
		ServiceClosing:        "عذرا، هذه الخدمة متوقفة للصيانة. من فضلك اتصل بعد دقائق.",
		LimitReached:          "حفاظا على أمانك، هذه الخدمة غير متاحة لهذه البطاقة أو هذا الهاتف الآن. من فضلك حاول لاحقا.",
		EnterSecurityCode:     "من فضلك أدخل رمز الأمان المكون من ثلاثة أرقام الموجود على ظهر البطاقة.",
		ReasonDetailsMismatch: "بيانات البطاقة التي أدخلتها لا تطابق سجلاتنا.",
		ResultCannotVerify:    "عذرا، لا يمكن تعيين الرقم السري لهذه البطاقة من هذا الخط. لم يتم تعيين الرقم السري. من فضلك اتصل بالبنك.",
		ResultAlreadySet:      "تم تعيين أول رقم سري لهذه البطاقة من قبل. لم يتغير الرقم السري. لإعادة تعيين الرقم السري، من فضلك تحدث إلى موظف في البنك.",
		ReasonExpiryMismatch:  "تاريخ الانتهاء الذي أدخلته لا يطابق هذه البطاقة.",
		ResultUnknownCard:     "البنك لا يعرف رقم هذه البطاقة. لم يتغير الرقم السري. من فضلك تحقق من الرقم المكتوب على البطاقة.",
	},
	"zh": {
		Welcome:               "欢迎使用银行卡密码服务。",
		LanguageChoice:        "中文服务请按",
		MenuChange:            "修改密码请按1。",
		MenuSetup:             "设置新卡密码请按2。",
		MenuAgent:             "人工服务请按0。",
		MenuRepeat:            "重听请按9。",
		EnterCard:             "请输入您的卡号，以井号键结束。",
		CardEnding:            "尾号为",
		EnterExpiry:           "请输入卡片有效期：两位年份，然后两位月份。",
		EnterCurrentPIN:       "请输入当前密码，以井号键结束。",
		EnterNewPIN:           "请输入新密码，以井号键结束。",
		PINRuleFrom:           "新密码须为",
		PINRuleTo:             "到",
		PINRuleDigits:         "位数字，不能有重复或连续的数字。",
		ConfirmNewPIN:         "请再次输入新密码，以井号键结束。",
		NoInput:               "对不起，没有听到您的输入。",
		InvalidChoice:         "对不起，没有这个选项。",
		EntryCleared:          "输入已清除。",
		ReasonIncomplete:      "号码不完整。",
		ReasonTooLong:         "号码太长。",
		ReasonNotValid:        "这不是有效的卡号。",
		ReasonBadDate:         "这不是有效的日期。",
		ReasonExpired:         "这张卡已过期。",
		ReasonPINLength:       "密码位数不对。",
		ReasonPINWeak:         "这个密码太容易被猜到。",
		ReasonPINSame:         "新密码不能与当前密码相同。",
		ReasonPINMismatch:     "两次输入的密码不一致。",
		ReasonWrongPIN:        "当前密码不正确。",
		TryAgain:              "请重试。",
		PleaseWait:            "正在联系银行，请稍候。",
		StillWorking:          "仍在处理中，请不要挂机。",
		ResultChanged:         "您的密码已修改，请从现在起使用新密码。",
		ResultSet:             "您的新卡密码已设置。",
		ResultWrongPIN:        "当前密码不正确，您的密码没有修改。",
		ResultNotEligible:     "这张卡不能使用本服务，您的密码没有修改，请联系银行。",
		ResultWeakPIN:         "银行没有接受这个密码，您的密码没有修改。",
		ResultRejected:        "对不起，银行无法修改您的密码，请联系银行。",
		ResultUnavailable:     "对不起，服务暂时不可用，您的密码没有修改，请稍后再试。",
		ResultAmbiguous:       "对不起，我们无法确认您的密码是否已修改。请不要马上重试，稍后试用新密码，或联系银行。",
		NoPINYetOffer:         "这张卡还没有密码。现在设置首个密码请按1。",
		TooManyTries:          "对不起，多次尝试仍未成功。",
		TransferAgent:         "正在为您转接人工服务，请稍候。",
		NoAgent:               "对不起，本线路无法转接人工服务。",
		ReturningToAgent:      "现在为您转回人工服务。",
		Goodbye:               "感谢您的来电，再见。",
		ServiceClosing:        "对不起，本服务正在维护，请几分钟后再拨。",
		LimitReached:          "为了您的安全，本服务暂时不能为这张卡或这部电话提供服务，请稍后再试。",
		EnterSecurityCode:     "请输入卡片背面的三位安全码。",
		ReasonDetailsMismatch: "您输入的卡片信息与我们的记录不符。",
		ResultCannotVerify:    "对不起，本线路无法设置这张卡的密码，您的密码没有设置，请致电银行。",
		ResultAlreadySet:      "这张卡的首个密码已经设置过，您的密码没有修改。如需重置密码，请联系银行人工服务。",
		ReasonExpiryMismatch:  "您输入的有效期与这张卡不符。",
		ResultUnknownCard:     "银行无法识别这个卡号，您的密码没有修改，请核对卡上的号码。",
	},
}

// MaxNumber is the largest number the line can say (a PIN of 12 digits).
const MaxNumber = 12

// Number is the prompt that says n, 0 to MaxNumber.
func Number(n int) ID { return ID("number-" + strconv.Itoa(n)) }

func init() {
	// The numbers' text is the numeral: espeak-ng reads it in each
	// language's own words, and the console shows it as is.
	for _, lang := range Languages {
		for n := 0; n <= MaxNumber; n++ {
			Text[lang][Number(n)] = strconv.Itoa(n)
		}
	}
}

// Item is one thing to play: a prompt, in the channel's language or a fixed
// one.
type Item struct {
	Prompt ID
	// Lang forces a language (the language menu speaks each language in
	// itself); empty means the channel's language.
	Lang string
}

// PIn makes an Item for a prompt in a fixed language.
func PIn(id ID, lang string) Item { return Item{Prompt: id, Lang: lang} }

// P makes an Item for a prompt.
func P(id ID) Item { return Item{Prompt: id} }

// N makes the Item that says the number n (0 to MaxNumber), in lang ("" for
// the channel's language).
func N(n int, lang string) Item { return Item{Prompt: Number(n), Lang: lang} }

// Digits reads s back digit by digit (never a PIN), one Item per digit;
// anything but a digit is skipped.
func Digits(s, lang string) []Item {
	items := make([]Item, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			items = append(items, N(int(s[i]-'0'), lang))
		}
	}
	return items
}

// MediaURI is the Asterisk media URI for the item.
func (i Item) MediaURI() string {
	if i.Lang != "" {
		// Asterisk looks in <sounds>/<channel lang>/<file> and then in
		// <sounds>/<file>, so "ar/ivr-pin/x" finds the Arabic file whatever
		// the channel's language.
		return "sound:" + i.Lang + "/ivr-pin/" + string(i.Prompt)
	}
	return "sound:ivr-pin/" + string(i.Prompt)
}

// TextIn is the item's words in lang (for the console and logs), falling
// back to English.
func (i Item) TextIn(lang string) string {
	if i.Lang != "" {
		lang = i.Lang
	}
	if t, ok := Text[lang][i.Prompt]; ok {
		return t
	}
	return Text["en"][i.Prompt]
}

// Continues reports whether next is said in the same sentence as prev: a
// number after "Your new PIN must have", "to" or "For English, press", and
// "to" or "digits…" after a number. The console prints such a sentence on
// one line.
func Continues(prev, next ID) bool {
	switch prev {
	case LanguageChoice, PINRuleFrom, PINRuleTo:
		return true
	}
	return next == PINRuleTo || next == PINRuleDigits
}

// FromMediaURI finds the item a media URI plays (the console uses it to show
// what Asterisk was asked to play).
func FromMediaURI(uri string) (Item, bool) {
	if id, ok := strings.CutPrefix(uri, "sound:ivr-pin/"); ok {
		return Item{Prompt: ID(id)}, true
	}
	if rest, ok := strings.CutPrefix(uri, "sound:"); ok {
		if lang, id, ok := strings.Cut(rest, "/ivr-pin/"); ok {
			return Item{Prompt: ID(id), Lang: lang}, true
		}
	}
	return Item{}, false
}

// All lists every prompt ID, sorted.
func All() []ID {
	ids := make([]ID, 0, len(Text["en"]))
	for id := range Text["en"] {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	return ids
}

// Check reports any prompt missing in any of langs.
func Check(langs []string) error {
	var missing []string
	for _, l := range langs {
		t, ok := Text[l]
		if !ok {
			return fmt.Errorf("no prompts for language %q", l)
		}
		for _, id := range All() {
			if strings.TrimSpace(t[id]) == "" {
				missing = append(missing, l+"/"+string(id))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("prompts missing: %s", strings.Join(missing, ", "))
	}
	return nil
}
