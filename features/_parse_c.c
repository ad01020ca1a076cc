/* features._parse_c: the per-record body of features.parse's block loop, in C.
 *
 * A pool's first reading parses every line (orjson) and keeps a few of each record's
 * values: its key set's entry, its created, message and exc_text, its combo of
 * low-cardinality values and the values its key set keeps (tags, the workflow's own
 * keys, payload keys). Here those are the same steps as the Python loop's, with the same
 * Python objects (the key set's getters, its memo, the block's dicts), so the block comes
 * out the same: a test compares every column of the batches both ways on the sample runs,
 * forged blocks and random ones.
 * What it saves is the interpreter's steps, ~0.6 us a record (parse_block 4.9 -> 4.2 us),
 * splitting the block into lines (it hands orjson a view of each line in the block, not a
 * copy: -0.3 us) and a tuple of each record's keys to look its key set up by (-0.25 us:
 * see entry_of). The getters, the tuples they make and the values kept cost the same
 * either way.
 *
 * scan() stops at a line that is not a JSON object (a bad line, a blank one, an array)
 * and at a record with a combo value that is not a text or null (a typed or nested one,
 * keyed with its type): features.parse takes that line its own way and calls scan() again
 * after it.
 *
 * Built when a C compiler is there (pyproject.toml: optional); without it, or with
 * ACADEMY_TUI_PURE_PYTHON=1, features.parse runs its Python loop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The three values every record gives its block's columns. */
static PyObject *k_created, *k_message, *k_exc_text;

/* The entry of a key set (features.parse._entry), by position. */
enum { E_CODE, E_SHAPE, E_CME, E_LOW, E_KEEP, E_EXTRA, E_MEMO, E_KEPT, E_LOW_KEYS, E_SIZE };

static int
append_steal(PyObject *list, PyObject *item)
{
    if (item == NULL)
        return -1;
    int err = PyList_Append(list, item);
    Py_DECREF(item);
    return err;
}

/* The record's key set as a tuple. A new reference, or NULL. */
static PyObject *
keys_of(PyObject *d)
{
    Py_ssize_t n = PyDict_GET_SIZE(d), pos = 0, i = 0;
    PyObject *keys = PyTuple_New(n), *k, *v;
    if (keys == NULL)
        return NULL;
    while (PyDict_Next(d, &pos, &k, &v) && i < n) {
        Py_INCREF(k);
        PyTuple_SET_ITEM(keys, i, k);
        i++;
    }
    return keys;
}

/* The combo code of a record (its key set's low values `low`); -2 when a value is not a
   text or None (the caller takes the record its own way), -1 on an error. */
static Py_ssize_t
combo_of(PyObject *ent, PyObject *low, PyObject *combos)
{
    PyObject *memo = PyTuple_GET_ITEM(ent, E_MEMO);
    if (!PyList_CheckExact(memo) || PyList_GET_SIZE(memo) != 2) {
        PyErr_SetString(PyExc_TypeError, "a key set's memo must be a list of two");
        return -1;
    }
    int same = PyObject_RichCompareBool(low, PyList_GET_ITEM(memo, 0), Py_EQ);
    if (same < 0)
        return -1;
    if (same)
        return PyLong_AsSsize_t(PyList_GET_ITEM(memo, 1));
    /* Texts (and None) only: a typed value is keyed with its type by the caller
       (features.parse._combo_key; as dict keys False, 0 and 0.0 are one). */
    if (!PyTuple_CheckExact(low))
        return -2;
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(low); j++) {
        PyObject *v = PyTuple_GET_ITEM(low, j);
        if (v != Py_None && !PyUnicode_CheckExact(v))
            return -2;
    }
    PyObject *key = PyTuple_Pack(2, PyTuple_GET_ITEM(ent, E_CODE), low);
    if (key == NULL)
        return -1;
    PyObject *got = PyDict_GetItemWithError(combos, key);
    Py_ssize_t x;
    if (got != NULL) {
        x = PyLong_AsSsize_t(got);
    } else {
        if (PyErr_Occurred()) {
            Py_DECREF(key);
            return -1;
        }
        x = PyDict_GET_SIZE(combos);
        PyObject *code = PyLong_FromSsize_t(x);
        if (code == NULL || PyDict_SetItem(combos, key, code) < 0) {
            Py_XDECREF(code);
            Py_DECREF(key);
            return -1;
        }
        Py_DECREF(code);
    }
    Py_DECREF(key);
    if (x < 0)
        return -1;
    PyObject *xo = PyLong_FromSsize_t(x);
    if (xo == NULL)
        return -1;
    Py_INCREF(low);
    if (PyList_SetItem(memo, 0, low) < 0) {  /* steals low, releases the old one */
        Py_DECREF(xo);
        return -1;
    }
    if (PyList_SetItem(memo, 1, xo) < 0)
        return -1;
    return x;
}

/* Key sets seen in this scan, by a signature of their size and last keys: a record's key
   set is found by comparing its keys with one remembered set (mostly the same objects:
   orjson reuses the objects of keys it has seen), not by building a tuple of them and
   looking that up (~0.45 us a record). The signature only picks the slot; a key set is
   taken from it only when every key compares equal, in order. */
#define SLOTS 64
struct slot {
    Py_uhash_t sig;
    PyObject *keys;  /* strong references, released at the end of the scan */
    PyObject *ent;
};

static void
clear_slots(struct slot *tab)
{
    for (int j = 0; j < SLOTS; j++) {
        Py_CLEAR(tab[j].keys);
        Py_CLEAR(tab[j].ent);
    }
}

/* The hash of the size and the last four keys of `d` (its key order); -1 on an error. */
static int
signature(PyObject *d, Py_uhash_t *sig)
{
    Py_ssize_t n = PyDict_GET_SIZE(d), pos = n > 4 ? n - 4 : 0;
    PyObject *k, *v;
    Py_uhash_t h = (Py_uhash_t)n * 0x9E3779B97F4A7C15ULL;
    /* From the fifth last entry on: a dict orjson made has no holes, so that is where its
       fourth last key is (were it elsewhere, only the slot chosen would differ). */
    while (PyDict_Next(d, &pos, &k, &v)) {
        Py_hash_t hk = PyObject_Hash(k);
        if (hk == -1)
            return -1;
        h = (h ^ (Py_uhash_t)hk) * 0x100000001B3ULL;
    }
    *sig = h ^ (h >> 31);
    return 0;
}

/* Whether the keys of `d` are those of `keys`, in order: 1, 0, or -1 on an error. */
static int
same_keys(PyObject *d, PyObject *keys)
{
    if (keys == NULL || PyTuple_GET_SIZE(keys) != PyDict_GET_SIZE(d))
        return 0;
    Py_ssize_t pos = 0, i = 0;
    PyObject *k, *v;
    while (PyDict_Next(d, &pos, &k, &v)) {
        PyObject *t = PyTuple_GET_ITEM(keys, i);
        if (k != t) {
            int eq = PyObject_RichCompareBool(k, t, Py_EQ);
            if (eq <= 0)
                return eq;
        }
        i++;
    }
    return 1;
}

/* The block's entry of the key set of `d` (a new reference), or NULL on an error. */
static PyObject *
entry_of(PyObject *d, struct slot *tab, PyObject *shapes, PyObject *new_entry)
{
    Py_uhash_t sig;
    if (signature(d, &sig) < 0)
        return NULL;
    struct slot *s = &tab[sig & (SLOTS - 1)];
    if (s->ent != NULL && s->sig == sig) {
        int same = same_keys(d, s->keys);
        if (same < 0)
            return NULL;
        if (same) {
            Py_INCREF(s->ent);
            return s->ent;
        }
    }
    PyObject *keys = keys_of(d);
    if (keys == NULL)
        return NULL;
    PyObject *ent = PyDict_GetItemWithError(shapes, keys);
    if (ent != NULL) {
        Py_INCREF(ent);
    } else if (PyErr_Occurred()) {
        Py_DECREF(keys);
        return NULL;
    } else {
        ent = PyObject_CallOneArg(new_entry, keys);
        if (ent == NULL) {
            Py_DECREF(keys);
            return NULL;
        }
    }
    Py_XSETREF(s->keys, keys);
    Py_INCREF(ent);
    Py_XSETREF(s->ent, ent);
    s->sig = sig;
    return ent;
}

/* Whether the record's combo values (of its key set's combo keys, all present) equal
   the memo's (the combo of the key set's last record), compared in place: most records
   repeat it, and building the tuple of their values to compare it was ~60 ns a record.
   The same comparison as the tuples' (identity, else ==). 1, 0, or -1 on an error. */
static int
memo_hit(PyObject *ent, PyObject *d)
{
    PyObject *memo = PyTuple_GET_ITEM(ent, E_MEMO), *keys = PyTuple_GET_ITEM(ent, E_LOW_KEYS);
    if (!PyList_CheckExact(memo) || PyList_GET_SIZE(memo) != 2 || !PyTuple_CheckExact(keys))
        return 0;  /* combo_of says what is wrong */
    PyObject *low = PyList_GET_ITEM(memo, 0);
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    if (!PyTuple_CheckExact(low) || PyTuple_GET_SIZE(low) != n)
        return 0;
    Py_INCREF(low);  /* held: a comparison could run code (not a text's) */
    int same = 1;
    for (Py_ssize_t j = 0; j < n && same == 1; j++) {
        PyObject *v = PyDict_GetItemWithError(d, PyTuple_GET_ITEM(keys, j));
        if (v == NULL) {
            same = PyErr_Occurred() ? -1 : 0;
            break;
        }
        PyObject *m = PyTuple_GET_ITEM(low, j);
        if (v != m) {
            Py_INCREF(v);
            same = PyObject_RichCompareBool(v, m, Py_EQ);
            Py_DECREF(v);
        }
    }
    Py_DECREF(low);
    return same;
}

/* One record appended, or 1 when the caller must take it, or -1 on an error. */
static int
take(PyObject *d, Py_ssize_t here, struct slot *tab, PyObject *shapes, PyObject *new_entry,
     PyObject *combos, PyObject *const *cme, PyObject *offset, PyObject *shape,
     PyObject *combo)
{
    PyObject *ent = entry_of(d, tab, shapes, new_entry);
    if (ent == NULL)
        return -1;
    if (!PyTuple_CheckExact(ent) || PyTuple_GET_SIZE(ent) != E_SIZE) {
        Py_DECREF(ent);
        PyErr_SetString(PyExc_TypeError, "a key set's entry must be a tuple of nine");
        return -1;
    }
    int status = -1;
    Py_ssize_t x;
    int hit = memo_hit(ent, d);
    if (hit < 0)
        goto done;
    if (hit) {
        x = PyLong_AsSsize_t(PyList_GET_ITEM(PyTuple_GET_ITEM(ent, E_MEMO), 1));
    } else {
        PyObject *low = PyObject_CallOneArg(PyTuple_GET_ITEM(ent, E_LOW), d);
        if (low == NULL)
            goto done;
        x = combo_of(ent, low, combos);
        Py_DECREF(low);
    }
    if (x == -2) {
        status = 1;
        goto done;
    }
    if (x < 0)
        goto done;
    PyObject *const keys3[3] = {k_created, k_message, k_exc_text};
    for (int c = 0; c < 3; c++) {  /* d.get(key): None where the record has none */
        PyObject *v = PyDict_GetItemWithError(d, keys3[c]);
        if (v == NULL && PyErr_Occurred())
            goto done;
        if (PyList_Append(cme[c], v == NULL ? Py_None : v) < 0)
            goto done;
    }
    if (append_steal(offset, PyLong_FromSsize_t(here)) < 0 ||
        PyList_Append(shape, PyTuple_GET_ITEM(ent, E_CODE)) < 0 ||
        append_steal(combo, PyLong_FromSsize_t(x)) < 0)
        goto done;
    if (PyTuple_GET_ITEM(ent, E_KEEP) != Py_None &&
        append_steal(PyTuple_GET_ITEM(ent, E_KEPT),
                     PyObject_CallOneArg(PyTuple_GET_ITEM(ent, E_EXTRA), d)) < 0)
        goto done;
    status = 0;
done:
    Py_DECREF(ent);
    return status;
}

static PyObject *
scan(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *data, *loads, *decode_error, *shapes, *new_entry, *combos;
    PyObject *cme[3], *offset, *shape, *combo;
    Py_ssize_t pos, off;
    if (!PyArg_ParseTuple(args, "O!nnOOO!OO!O!O!O!O!O!O!", &PyBytes_Type, &data, &pos, &off,
                          &loads, &decode_error, &PyDict_Type, &shapes, &new_entry,
                          &PyDict_Type, &combos, &PyList_Type, &cme[0], &PyList_Type, &cme[1],
                          &PyList_Type, &cme[2], &PyList_Type, &offset, &PyList_Type, &shape,
                          &PyList_Type, &combo))
        return NULL;
    const char *buf = PyBytes_AS_STRING(data);
    Py_ssize_t end = PyBytes_GET_SIZE(data), taken = 0;
    if (pos < 0 || pos > end) {
        PyErr_SetString(PyExc_ValueError, "the position is outside the block");
        return NULL;
    }
    struct slot tab[SLOTS] = {{0}};
    Py_INCREF(data);  /* the views below point into it */
    while (pos < end) {
        const char *p = buf + pos;
        const char *nl = memchr(p, '\n', (size_t)(end - pos));
        Py_ssize_t size = nl != NULL ? nl - p : end - pos;
        /* A view of the line, not a copy (a split copied every line: ~0.3 us a record).
           It does not hold the block, so it must not outlive this call: one kept by the
           parser is released and the scan stops with an error. */
        PyObject *view = PyMemoryView_FromMemory((char *)p, size, PyBUF_READ);
        if (view == NULL)
            goto fail;
        PyObject *d = PyObject_CallOneArg(loads, view);
        if (Py_REFCNT(view) != 1) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyObject *r = PyObject_CallMethod(view, "release", NULL);
            if (r == NULL)  /* exported further: the block is kept for good instead */
                Py_INCREF(data);
            Py_XDECREF(r);
            Py_DECREF(view);
            Py_XDECREF(d);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            PyErr_Clear();
            PyErr_SetString(PyExc_RuntimeError, "the JSON parser kept a view of a line");
            goto fail;
        }
        Py_DECREF(view);
        if (d == NULL) {
            if (PyErr_ExceptionMatches(decode_error)) {
                PyErr_Clear();
                break;  /* a bad or blank line: the caller's */
            }
            goto fail;
        }
        if (!PyDict_CheckExact(d)) {
            Py_DECREF(d);
            break;  /* not a JSON object: the caller's */
        }
        int got = take(d, off, tab, shapes, new_entry, combos, cme, offset, shape, combo);
        Py_DECREF(d);
        if (got < 0)
            goto fail;
        if (got > 0)
            break;  /* a typed or nested value in a combo: the caller's */
        taken++;
        off += size + 1;
        pos = nl != NULL ? pos + size + 1 : end;
    }
    clear_slots(tab);
    Py_DECREF(data);
    return Py_BuildValue("nnn", pos, off, taken);
fail:
    clear_slots(tab);
    Py_DECREF(data);
    return NULL;
}

/* features.columns.intern_codes in one C pass a value (~40 against ~130 ns a value): the
   codes of `vals` in `index` (None -> -1 unless None is in it), a new value given the
   next code (len(values), or len(index) without `values`) in order of first appearance,
   appended to `values` and then learnt by `index`. Every value is looked up before any is
   added, so an unhashable one raises TypeError with `index` and `values` unchanged, as
   the Python function does. The interpreter lock is held throughout: no reader sees a
   code before its value. */
static PyObject *
intern_codes(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *index, *vals, *values = Py_None;
    if (!PyArg_ParseTuple(args, "O!O!|O", &PyDict_Type, &index, &PyList_Type, &vals, &values))
        return NULL;
    if (values != Py_None && !PyList_CheckExact(values)) {
        PyErr_SetString(PyExc_TypeError, "values must be a list or None");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(vals);
    PyObject *out = PyList_New(n);  /* first the codes found (or NULL), then all codes */
    if (out == NULL)
        return NULL;
    int missing = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= PyList_GET_SIZE(vals))  /* shortened by a value's own __eq__ */
            goto changed;
        PyObject *v = PyList_GET_ITEM(vals, i);
        Py_INCREF(v);  /* held: a comparison may run code that drops it from the list */
        PyObject *c = PyDict_GetItemWithError(index, v);
        Py_XINCREF(c);
        Py_DECREF(v);
        if (c == NULL) {
            if (PyErr_Occurred())
                goto fail;
            missing = 1;
            continue;
        }
        PyList_SET_ITEM(out, i, c);
    }
    if (!missing)
        return out;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_GET_ITEM(out, i) != NULL)
            continue;
        if (i >= PyList_GET_SIZE(vals))
            goto changed;
        PyObject *v = PyList_GET_ITEM(vals, i);
        PyObject *c;
        if (v == Py_None) {
            if ((c = PyLong_FromLong(-1)) == NULL)
                goto fail;
        } else {
            Py_INCREF(v);
            c = PyDict_GetItemWithError(index, v);  /* added earlier in this pass? */
            if (c != NULL) {
                Py_INCREF(c);
            } else {
                if (PyErr_Occurred()) {
                    Py_DECREF(v);
                    goto fail;
                }
                Py_ssize_t code = values == Py_None ? PyDict_GET_SIZE(index)
                                                    : PyList_GET_SIZE(values);
                if ((c = PyLong_FromSsize_t(code)) == NULL) {
                    Py_DECREF(v);
                    goto fail;
                }
                if ((values != Py_None && PyList_Append(values, v) < 0) ||
                        PyDict_SetItem(index, v, c) < 0) {
                    Py_DECREF(c);
                    Py_DECREF(v);
                    goto fail;
                }
            }
            Py_DECREF(v);
        }
        PyList_SET_ITEM(out, i, c);
    }
    return out;
changed:
    PyErr_SetString(PyExc_RuntimeError, "the values changed size while being coded");
fail:
    Py_DECREF(out);  /* a list's NULL items are skipped when it is freed */
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(block, pos, offset, loads, decode_error, shapes, new_entry, combos, created, "
     "message, exc_text, offsets, shape, combo) -> (pos, offset, taken): the block's "
     "lines from byte pos appended until one the caller must take."},
    {"intern_codes", intern_codes, METH_VARARGS,
     "intern_codes(index, vals, values=None) -> codes: features.columns.intern_codes in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "features._parse_c",
    "The per-record body of features.parse's block loop.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__parse_c(void)
{
    k_created = PyUnicode_InternFromString("created");
    k_message = PyUnicode_InternFromString("message");
    k_exc_text = PyUnicode_InternFromString("exc_text");
    if (k_created == NULL || k_message == NULL || k_exc_text == NULL)
        return NULL;
    return PyModule_Create(&module);
}
