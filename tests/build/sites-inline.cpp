// Compile test (run by meson test, not built): C++ code puts sites in inline
// functions (member functions defined in the class, templates, inline functions)
// next to sites in ordinary functions, in one translation unit.
#include <probe/probe.h>

struct Parser {
    int parse(int x)
    {
        PROBE_FUNC();
        return x + 1;
    }
};

template <typename T>
T
twice(T x)
{
    PROBE_SCOPE("twice");
    PROBE_COUNT("twice_calls", 1);
    return x + x;
}

inline int
helper(int x)
{
    PROBE_SCOPE("helper");
    PROBE_LINE();
    return x;
}

int sites_inline_entry(int x);

int
sites_inline_entry(int x)
{
    PROBE_SCOPE("entry");
    Parser p;
    return p.parse(x) + twice(x) + static_cast<int>(twice(1.0)) + helper(x);
}
