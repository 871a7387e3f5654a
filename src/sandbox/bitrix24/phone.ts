/**
 * How the portal turns a phone or email into the match code `crm.duplicate.findbycomm` compares (§7.7).
 * Ported from the CRM core: `Bitrix\Crm\Integrity\DuplicateCommunicationCriterion::prepareCodes` and
 * `::normalizePhone` (modules/crm/lib/integrity/duplicatecommunicationcriterion.php), which call the main
 * module's `NormalizePhone($number, 1)` (modules/main/tools.php). Stored values are registered through the
 * same code, so `+7 912 447-03-61`, `89124470361` and `+79124470361` all become `79124470361`, while a
 * number typed without its country code or trunk prefix (`9124470361`) stays a different code.
 */

/** `NormalizePhone($number, $minLength = 1)` of modules/main/tools.php. Returns false for an empty string. */
function mainNormalizePhone(input: string): string | false {
  let number = input;
  if ([...number].length < 1) return false;
  // '+8…' is an international prefix, not the Russian trunk 8: keep the 8 by turning '+' into '00'.
  if ([...number].length >= 10 && number.startsWith('+8')) number = `00${number.slice(1)}`;
  number = number.replace(/[^0-9#*,;]/gi, '');
  if (number.length >= 10) {
    if (/^8[012]/.test(number)) {
      // 80, 81, 82 are kept as they are
    } else if (number.startsWith('00')) number = number.slice(2);
    else if (number.startsWith('011')) number = number.slice(3);
    else if (number.startsWith('8')) number = `7${number.slice(1)}`;
    else if (number.startsWith('0')) number = number.slice(1);
  }
  return number;
}

/** `DuplicateCommunicationCriterion::normalizePhone`: main's normalisation, else the bare digits; extensions dropped. */
export function corePhoneCode(value: string): string {
  if (value === '') return '';
  let result = mainNormalizePhone(value);
  if (result === false || result === '') result = value.replace(/[^0-9#*,;]/gi, '');
  return result.replace(/(\d+)([;#]*)([\d,]*)/g, '$1');
}

/** `prepareCodes`: phones through corePhoneCode, other types trimmed and lower-cased; empty codes dropped. */
export function matchCode(type: 'PHONE' | 'EMAIL', value: string): string {
  return type === 'PHONE' ? corePhoneCode(value) : value.trim().toLowerCase();
}
