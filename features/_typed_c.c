/* features._typed_c: features.typed's rule for the values it decides at a glance.
 *
 * `events --format jsonl` types every value of every record (features.typed). In Python
 * that cost ~6 us of a record's ~11 us of CPU: a loop over its ~27 values, each a few
 * checks and a memo lookup. Here the same checks run in C, and only the values they do
 * not decide are handed to the Python rule (features.typed._typed_py), whose answer for a
 * text is remembered. The result is exactly the Python rule's: a test compares the two
 * value by value and type by type, on real records, hostile ones and random ones.
 *
 * Decided here, as the Python rule decides them:
 *   - None, a bool, a float: as it is; an int an int64 holds: as it is;
 *   - a text over `long_text` characters: as it is;
 *   - a null spelling (`null_strings`): None;
 *   - ASCII digits alone (at most 18 of them): that integer; digits with one dot: that
 *     float (`float()` of the same text, through the same conversion);
 *   - a text whose first character starts no number form (`num_start`), and that is not
 *     shaped like an id (a first character in `id_start`, and 36 long or ending in '>'):
 *     as it is.
 * Everything else (signs, exponents, ids, other types, nested values) goes to the Python
 * rule. Pool content is untrusted: nothing here parses beyond a text's known length, and
 * the only buffer (20 bytes) takes at most 18 characters.
 *
 * Built when a C compiler is there (pyproject.toml: optional); without it features.typed
 * uses the Python rule alone, as it does with ACADEMY_TUI_PURE_PYTHON=1.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MEMO_MAX 65536
#define DIGITS_MAX 18

static PyObject *null_strings = NULL; /* frozenset: the null spellings */
static PyObject *slow = NULL;         /* the Python rule for one value */
static PyObject *memo = NULL;         /* text -> the Python rule's answer (bounded) */
static Py_ssize_t long_text = 40;
static unsigned char num_start[128], id_start[128];

static int
mark(unsigned char *table, PyObject *chars)
{
    memset(table, 0, 128);
    Py_ssize_t n = PyUnicode_GET_LENGTH(chars);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(chars, i);
        if (c >= 128) {
            PyErr_SetString(PyExc_ValueError, "first characters must be ASCII");
            return -1;
        }
        table[c] = 1;
    }
    return 0;
}

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *nulls, *fn, *num, *ids;
    Py_ssize_t lng;
    if (!PyArg_ParseTuple(args, "O!OUUn", &PyFrozenSet_Type, &nulls, &fn, &num, &ids, &lng))
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "the Python rule must be callable");
        return NULL;
    }
    if (lng < 0) {
        PyErr_SetString(PyExc_ValueError, "the long text length must be >= 0");
        return NULL;
    }
    if (mark(num_start, num) < 0 || mark(id_start, ids) < 0)
        return NULL;
    PyObject *fresh = PyDict_New();
    if (fresh == NULL)
        return NULL;
    Py_INCREF(nulls);
    Py_XSETREF(null_strings, nulls);
    Py_INCREF(fn);
    Py_XSETREF(slow, fn);
    Py_XSETREF(memo, fresh);
    long_text = lng;
    Py_RETURN_NONE;
}

/* The Python rule's answer for a text, remembered. A new reference, or NULL. */
static PyObject *
ask_text(PyObject *v)
{
    PyObject *got = PyDict_GetItemWithError(memo, v);
    if (got != NULL) {
        Py_INCREF(got);
        return got;
    }
    if (PyErr_Occurred())
        return NULL;
    got = PyObject_CallOneArg(slow, v);
    if (got == NULL)
        return NULL;
    if (PyDict_GET_SIZE(memo) >= MEMO_MAX)
        PyDict_Clear(memo);
    if (PyDict_SetItem(memo, v, got) < 0) {
        Py_DECREF(got);
        return NULL;
    }
    return got;
}

/* A text typed. A new reference, or NULL (an error set). */
static PyObject *
typed_text(PyObject *v)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(v) < 0)
        return NULL;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(v);
    if (n > long_text)
        return Py_NewRef(v);
    if (n == 0 || n == 4) {  /* "", "None", "null": the null spellings' lengths */
        int is_null = PySet_Contains(null_strings, v);
        if (is_null < 0)
            return NULL;
        if (is_null)
            Py_RETURN_NONE;
        if (n == 0)
            return Py_NewRef(v);
    }
    int kind = PyUnicode_KIND(v);
    const void *data = PyUnicode_DATA(v);
    if (PyUnicode_IS_ASCII(v) && n <= DIGITS_MAX) {
        Py_ssize_t digits = 0, dots = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS4 d = PyUnicode_READ(kind, data, i);
            if (d >= '0' && d <= '9')
                digits++;
            else if (d == '.')
                dots++;
            else {
                digits = 0;
                break;
            }
        }
        if (digits > 0 && dots <= 1) {
            char buf[DIGITS_MAX + 2];
            memcpy(buf, data, (size_t)n);  /* ASCII: one byte a character */
            buf[n] = '\0';
            if (dots == 0)
                return PyLong_FromString(buf, NULL, 10);
            double d = PyOS_string_to_double(buf, NULL, NULL);
            if (d == -1.0 && PyErr_Occurred())
                return NULL;
            return PyFloat_FromDouble(d);
        }
    }
    Py_UCS4 c = PyUnicode_READ(kind, data, 0);
    if (c >= 128)
        return Py_NewRef(v);
    if (!num_start[c] &&
        !(id_start[c] && (n == 36 || PyUnicode_READ(kind, data, n - 1) == '>')))
        return Py_NewRef(v);
    return ask_text(v);
}

/* One value typed. A new reference, or NULL (an error set). */
static PyObject *
typed_value(PyObject *v)
{
    if (PyUnicode_CheckExact(v))
        return typed_text(v);
    if (v == Py_None || PyBool_Check(v) || PyFloat_CheckExact(v))
        return Py_NewRef(v);
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        (void)PyLong_AsLongLongAndOverflow(v, &overflow);
        if (PyErr_Occurred())
            return NULL;
        if (!overflow)
            return Py_NewRef(v);
    }
    return PyObject_CallOneArg(slow, v);
}

static int
configured(void)
{
    if (slow == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "features._typed_c is not configured");
        return 0;
    }
    return 1;
}

static PyObject *
typed(PyObject *Py_UNUSED(module), PyObject *v)
{
    if (!configured())
        return NULL;
    return typed_value(v);
}

/* The values of `d` typed where they change, in place (setting a key the dict already
   has changes no size: safe while iterating). 0, or -1 with an error set. */
static int
type_values(PyObject *d)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(d, &pos, &k, &v)) {
        PyObject *t = typed_value(v);
        if (t == NULL)
            return -1;
        if (t == v) {
            Py_DECREF(t);
            continue;
        }
        Py_INCREF(k);
        int err = PyDict_SetItem(d, k, t);
        Py_DECREF(k);
        Py_DECREF(t);
        if (err < 0)
            return -1;
    }
    return 0;
}

static int
record_arg(PyObject *rec)
{
    if (!configured())
        return 0;
    if (!PyDict_Check(rec)) {
        PyErr_SetString(PyExc_TypeError, "a record must be a dict");
        return 0;
    }
    return 1;
}

static PyObject *
typed_record(PyObject *Py_UNUSED(module), PyObject *rec)
{
    if (!record_arg(rec))
        return NULL;
    /* A copy whose changed values are set in place: most values stay as they are. */
    PyObject *out = PyDict_Copy(rec);
    if (out == NULL)
        return NULL;
    if (type_values(out) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *
type_in_place(PyObject *Py_UNUSED(module), PyObject *rec)
{
    if (!record_arg(rec))
        return NULL;
    if (type_values(rec) < 0)
        return NULL;
    return Py_NewRef(rec);
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(null_strings, rule, num_start, id_start, long_text): the rule's constants "
     "and the Python rule for what is not decided here."},
    {"typed", typed, METH_O, "One value typed (features.typed.typed)."},
    {"typed_record", typed_record, METH_O,
     "{k: typed(v)} for one record (features.typed.typed_record)."},
    {"type_in_place", type_in_place, METH_O,
     "The record's values typed in place; the record (features.typed.type_in_place)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "features._typed_c",
    "features.typed's rule in C for the values it decides at a glance.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__typed_c(void)
{
    return PyModule_Create(&module);
}
