/* A module with initial-exec TLS (built -ftls-model=initial-exec), loaded
 * with dlopen by tests/legacy/dlopen_tls.c after its threads exist. glibc
 * gives it room in the surplus of every thread's static TLS block and
 * copies its initial image there, in the loading thread too, before the
 * constructor runs. The constructor reads its variable in the loading
 * thread and leaves another value there. */
__thread int tlsmod_ie_value = 42;
__thread char tlsmod_ie_zero[96];
static int seen_by_constructor = -1;

__attribute__((constructor)) static void tlsmod_ie_init(void)
{
	seen_by_constructor = tlsmod_ie_value;
	tlsmod_ie_value = 7;
}

int tlsmod_ie_constructor_saw(void)
{
	return seen_by_constructor;
}

/* The value, or -1 if the zero-initialised part is not zero. */
int tlsmod_ie_get(void)
{
	for (unsigned i = 0; i < sizeof tlsmod_ie_zero; i++)
		if (tlsmod_ie_zero[i])
			return -1;
	return tlsmod_ie_value;
}

void tlsmod_ie_set(int v)
{
	tlsmod_ie_value = v;
	tlsmod_ie_zero[v % sizeof tlsmod_ie_zero] = 1;
	tlsmod_ie_zero[v % sizeof tlsmod_ie_zero] = 0;
}
