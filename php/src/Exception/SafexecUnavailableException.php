<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Exception;

/**
 * safexec is missing, not executable, or not installed setuid root (so it could not act for the site
 * user). Thrown before anything runs.
 */
final class SafexecUnavailableException extends \RuntimeException implements CacheClientException
{
}
