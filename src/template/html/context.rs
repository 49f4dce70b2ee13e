//! Where in an HTML document output lands: Go's `html/template` contexts (`context.go`) with
//! the names Go prints in its errors, and the content types of attributes (`attr.go`).

use std::fmt;

/// Go's `state`: the part of the document being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) enum State {
    #[default]
    Text,
    Tag,
    AttrName,
    AfterName,
    BeforeValue,
    HtmlCmt,
    Rcdata,
    Attr,
    Url,
    Srcset,
    Js,
    JsDqStr,
    JsSqStr,
    JsBqStr,
    JsRegexp,
    JsBlockCmt,
    JsLineCmt,
    Css,
    CssDqStr,
    CssSqStr,
    CssDqUrl,
    CssSqUrl,
    CssUrl,
    CssBlockCmt,
    CssLineCmt,
    Dead,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Text => "stateText",
            State::Tag => "stateTag",
            State::AttrName => "stateAttrName",
            State::AfterName => "stateAfterName",
            State::BeforeValue => "stateBeforeValue",
            State::HtmlCmt => "stateHTMLCmt",
            State::Rcdata => "stateRCDATA",
            State::Attr => "stateAttr",
            State::Url => "stateURL",
            State::Srcset => "stateSrcset",
            State::Js => "stateJS",
            State::JsDqStr => "stateJSDqStr",
            State::JsSqStr => "stateJSSqStr",
            State::JsBqStr => "stateJSBqStr",
            State::JsRegexp => "stateJSRegexp",
            State::JsBlockCmt => "stateJSBlockCmt",
            State::JsLineCmt => "stateJSLineCmt",
            State::Css => "stateCSS",
            State::CssDqStr => "stateCSSDqStr",
            State::CssSqStr => "stateCSSSqStr",
            State::CssDqUrl => "stateCSSDqURL",
            State::CssSqUrl => "stateCSSSqURL",
            State::CssUrl => "stateCSSURL",
            State::CssBlockCmt => "stateCSSBlockCmt",
            State::CssLineCmt => "stateCSSLineCmt",
            State::Dead => "stateDead",
        }
    }

    /// Go's `isComment`.
    pub(crate) fn is_comment(self) -> bool {
        matches!(
            self,
            State::HtmlCmt
                | State::JsBlockCmt
                | State::JsLineCmt
                | State::CssBlockCmt
                | State::CssLineCmt
        )
    }

    /// Go's `isInTag`.
    pub(crate) fn is_in_tag(self) -> bool {
        matches!(
            self,
            State::Tag | State::AttrName | State::AfterName | State::BeforeValue | State::Attr
        )
    }
}

/// Go's `delim`: what ends the attribute value being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) enum Delim {
    #[default]
    None,
    DoubleQuote,
    SingleQuote,
    SpaceOrTagEnd,
}

/// Go's `urlPart`: where in a URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) enum UrlPart {
    #[default]
    None,
    PreQuery,
    QueryOrFrag,
    Unknown,
}

/// Go's `jsCtx`: whether a `/` in JavaScript would start a regexp or divide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) enum JsCtx {
    #[default]
    Regexp,
    DivOp,
    Unknown,
}

/// Go's `attr`: the kind of attribute whose value is being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) enum Attr {
    #[default]
    None,
    Script,
    ScriptType,
    Style,
    Url,
    Srcset,
}

/// Go's `element`: the special element whose content is being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) enum Element {
    #[default]
    None,
    Script,
    Style,
    Textarea,
    Title,
}

/// Go's `context` (without its error, which ours carries as a `Result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) struct Ctx {
    pub(crate) state: State,
    pub(crate) delim: Delim,
    pub(crate) url: UrlPart,
    pub(crate) js: JsCtx,
    pub(crate) attr: Attr,
    pub(crate) element: Element,
}

impl Ctx {
    pub(crate) fn of(state: State) -> Ctx {
        Ctx {
            state,
            ..Ctx::default()
        }
    }

    /// Go's `mangle`: the name of the copy of a template escaped for a call in this context.
    pub(crate) fn mangle(&self, name: &str) -> String {
        if self.state == State::Text {
            return name.to_string();
        }
        let mut s = format!("{name}$htmltemplate_{}", self.state.name());
        if self.delim != Delim::None {
            s.push('_');
            s.push_str(delim_name(self.delim));
        }
        if self.url != UrlPart::None {
            s.push('_');
            s.push_str(url_name(self.url));
        }
        if self.js != JsCtx::Regexp {
            s.push('_');
            s.push_str(js_name(self.js));
        }
        if self.attr != Attr::None {
            s.push('_');
            s.push_str(attr_name(self.attr));
        }
        if self.element != Element::None {
            s.push('_');
            s.push_str(element_name(self.element));
        }
        s
    }
}

fn delim_name(d: Delim) -> &'static str {
    match d {
        Delim::None => "delimNone",
        Delim::DoubleQuote => "delimDoubleQuote",
        Delim::SingleQuote => "delimSingleQuote",
        Delim::SpaceOrTagEnd => "delimSpaceOrTagEnd",
    }
}

fn url_name(u: UrlPart) -> &'static str {
    match u {
        UrlPart::None => "urlPartNone",
        UrlPart::PreQuery => "urlPartPreQuery",
        UrlPart::QueryOrFrag => "urlPartQueryOrFrag",
        UrlPart::Unknown => "urlPartUnknown",
    }
}

fn js_name(j: JsCtx) -> &'static str {
    match j {
        JsCtx::Regexp => "jsCtxRegexp",
        JsCtx::DivOp => "jsCtxDivOp",
        JsCtx::Unknown => "jsCtxUnknown",
    }
}

fn attr_name(a: Attr) -> &'static str {
    match a {
        Attr::None => "attrNone",
        Attr::Script => "attrScript",
        Attr::ScriptType => "attrScriptType",
        Attr::Style => "attrStyle",
        Attr::Url => "attrURL",
        Attr::Srcset => "attrSrcset",
    }
}

fn element_name(e: Element) -> &'static str {
    match e {
        Element::None => "elementNone",
        Element::Script => "elementScript",
        Element::Style => "elementStyle",
        Element::Textarea => "elementTextarea",
        Element::Title => "elementTitle",
    }
}

impl fmt::Display for Ctx {
    /// As Go prints a context in errors: `{stateText delimNone … elementNone <nil>}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{{} {} {} {} {} {} <nil>}}",
            self.state.name(),
            delim_name(self.delim),
            url_name(self.url),
            js_name(self.js),
            attr_name(self.attr),
            element_name(self.element)
        )
    }
}

/// Go's `contentType`, as attribute names map to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentType {
    Plain,
    Css,
    Html,
    Js,
    Url,
    Srcset,
    Unsafe,
}

/// Go's `attrType`: the content type of an attribute's value, by the attribute's (lowercase)
/// name.
pub(crate) fn attr_type(name: &str) -> ContentType {
    let mut name = name;
    if let Some(rest) = name.strip_prefix("data-") {
        name = rest;
    } else if let Some((prefix, short)) = name.split_once(':') {
        if prefix == "xmlns" {
            return ContentType::Url;
        }
        name = short;
    }
    let known = match name {
        "accept" | "alt" | "autocomplete" | "autofocus" | "checked" | "class" | "color"
        | "cols" | "colspan" | "coords" | "dir" | "dirname" | "disabled" | "draggable"
        | "dropzone" | "for" | "headers" | "height" | "hidden" | "high" | "hreflang" | "id"
        | "ismap" | "label" | "lang" | "list" | "loop" | "low" | "max" | "maxlength" | "media"
        | "min" | "multiple" | "name" | "open" | "optimum" | "placeholder" | "preload"
        | "pubdate" | "radiogroup" | "readonly" | "required" | "reversed" | "rows" | "rowspan"
        | "scope" | "scoped" | "seamless" | "selected" | "shape" | "size" | "sizes" | "span"
        | "srclang" | "start" | "step" | "tabindex" | "target" | "title" | "width" | "wrap"
        | "autoplay" | "border" | "contenteditable" | "contextmenu" | "controls" | "datetime"
        | "default" | "kind" | "mediagroup" | "spellcheck" | "summary" | "abbr" | "align"
        | "axis" | "bgcolor" | "cellpadding" | "cellspacing" | "char" | "charoff" | "clear"
        | "compact" | "declare" | "frame" | "frameborder" | "hspace" | "marginheight"
        | "marginwidth" | "noresize" | "noshade" | "nowrap" | "rules" | "scrolling" | "valign"
        | "vspace" | "xml:lang" | "xml:space" => Some(ContentType::Plain),
        "accept-charset" | "async" | "challenge" | "charset" | "content" | "crossorigin"
        | "defer" | "enctype" | "form" | "formenctype" | "formmethod" | "formnovalidate"
        | "http-equiv" | "keytype" | "language" | "method" | "novalidate" | "pattern" | "rel"
        | "sandbox" | "type" | "value" => Some(ContentType::Unsafe),
        "action" | "archive" | "background" | "cite" | "classid" | "codebase" | "data"
        | "formaction" | "href" | "icon" | "longdesc" | "manifest" | "poster" | "profile"
        | "src" | "usemap" | "xmlns" => Some(ContentType::Url),
        "srcdoc" => Some(ContentType::Html),
        "srcset" => Some(ContentType::Srcset),
        "style" => Some(ContentType::Css),
        _ => None,
    };
    if let Some(t) = known {
        return t;
    }
    if name.starts_with("on") {
        return ContentType::Js;
    }
    if name.contains("src") || name.contains("uri") || name.contains("url") {
        return ContentType::Url;
    }
    ContentType::Plain
}
