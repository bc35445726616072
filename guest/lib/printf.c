/* Small printf: %s %d %i %u %x %X %p %c %%, flags '0' '#' '-', width, l/ll/z. */
#include <keel/kit.h>

struct out {
	char *buf;	/* NULL: write to COM1 */
	size_t n, len;
};

static void emit(struct out *o, char c)
{
	if (!o->buf)
		putc(c);
	else if (o->len + 1 < o->n)
		o->buf[o->len] = c;
	o->len++;
}

static void emit_num(struct out *o, u64 v, int base, bool neg, bool upper,
		     bool alt, char pad, int width, bool left)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, len;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	len = n + neg + (alt ? 2 : 0);
	if (pad == '0' && !left) {
		if (neg)
			emit(o, '-');
		if (alt) {
			emit(o, '0');
			emit(o, 'x');
		}
		for (; width > len; width--)
			emit(o, '0');
	} else {
		for (; !left && width > len; width--)
			emit(o, ' ');
		if (neg)
			emit(o, '-');
		if (alt) {
			emit(o, '0');
			emit(o, 'x');
		}
	}
	while (n)
		emit(o, tmp[--n]);
	for (; left && width > len; width--)
		emit(o, ' ');
}

static void format(struct out *o, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		char pad = ' ';
		bool alt = false, left = false;
		int width = 0, lng = 0;
		u64 v;

		if (*fmt != '%') {
			emit(o, *fmt);
			continue;
		}
		for (fmt++;; fmt++) {
			if (*fmt == '0')
				pad = '0';
			else if (*fmt == '#')
				alt = true;
			else if (*fmt == '-')
				left = true;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + *fmt++ - '0';
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			long long s = lng ? va_arg(ap, long long) : va_arg(ap, int);

			emit_num(o, s < 0 ? -(u64)s : (u64)s, 10, s < 0, false,
				 false, pad, width, left);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
			v = lng ? va_arg(ap, u64) : va_arg(ap, unsigned int);
			emit_num(o, v, *fmt == 'u' ? 10 : 16, false, *fmt == 'X',
				 alt && *fmt != 'u', pad, width, left);
			break;
		case 'p':
			emit_num(o, (u64)va_arg(ap, void *), 16, false, false,
				 true, pad, width, left);
			break;
		case 'c':
			emit(o, va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int len;

			if (!s)
				s = "(null)";
			len = strlen(s);
			for (; !left && width > len; width--)
				emit(o, ' ');
			while (*s)
				emit(o, *s++);
			for (; left && width > len; width--)
				emit(o, ' ');
			break;
		}
		case '%':
			emit(o, '%');
			break;
		case 0:
			return;
		default:
			emit(o, '%');
			emit(o, *fmt);
		}
	}
}

int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
	struct out o = { buf, n, 0 };

	format(&o, fmt, ap);
	if (n)
		buf[o.len < n ? o.len : n - 1] = 0;
	return o.len;
}

int snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

int vprintf(const char *fmt, va_list ap)
{
	struct out o = { NULL, 0, 0 };

	format(&o, fmt, ap);
	return o.len;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vprintf(fmt, ap);
	va_end(ap);
	return r;
}
