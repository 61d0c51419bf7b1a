/* A module with __thread data, built -fPIC (general-dynamic TLS, the
 * usual model of a shared library), loaded with dlopen by
 * tests/legacy/dlopen_tls.c after its threads exist. */
__thread int tlsmod_value = 42;
__thread char tlsmod_block[8192] = { 1 };

int tlsmod_get(void)
{
	return tlsmod_value + tlsmod_block[0] - 1 + tlsmod_block[8191];
}

void tlsmod_set(int v)
{
	tlsmod_value = v;
}

void *tlsmod_addr(void)
{
	return &tlsmod_value;
}
